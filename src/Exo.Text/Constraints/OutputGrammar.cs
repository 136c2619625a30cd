using System.Text.Json;

namespace Exo.Text.Constraints;

/// <summary>
/// What a model's output must be, as a grammar over bytes: compiled once, immutable and shared by any number of
/// requests, each of which follows it with its own <see cref="TokenConstraint"/>.
/// </summary>
public sealed class OutputGrammar
{
    private OutputGrammar(Grammar grammar)
    {
        Grammar = grammar;
    }

    internal Grammar Grammar { get; }

    /// <summary>
    /// Exactly <paramref name="prefix"/>, one JSON value that validates against <paramref name="schema"/>, then
    /// <paramref name="suffix"/>; a null schema means any JSON object (OpenAI's json_object). See
    /// <see cref="SchemaCompiler"/> for the keywords supported. Throws <see cref="GrammarException"/>, naming the
    /// schema's JSON pointer, for a schema that is malformed, unsupported, unsatisfiable or too large.
    /// </summary>
    public static OutputGrammar Json(JsonElement? schema, string prefix = "", string suffix = "")
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentNullException.ThrowIfNull(suffix);
        return new OutputGrammar(SchemaCompiler.Compile(schema, prefix, suffix));
    }

    /// <summary>Exactly <paramref name="text"/>.</summary>
    public static OutputGrammar Literal(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var builder = new GrammarBuilder();
        return new OutputGrammar(builder.Build(builder.Rule("#", builder.Seq().Text(text))));
    }

    /// <summary>
    /// Starts one request. <paramref name="endTokens"/> end the output (allowed once it is whole);
    /// <paramref name="maxTokens"/> is the most tokens it may take, end token included. Throws
    /// <see cref="GrammarException"/> when even the shortest output does not fit, or the vocabulary lacks a
    /// single-byte token the grammar may need.
    /// </summary>
    public TokenConstraint Start(TokenVocabulary vocabulary, IReadOnlySet<int> endTokens, int maxTokens) =>
        new(Grammar, vocabulary, endTokens, maxTokens);
}
