using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Exo.Text.Constraints;

/// <summary>
/// What a model's output must be, as a grammar over bytes: compiled once, immutable and shared by any number of
/// requests, each of which follows it with its own <see cref="TokenConstraint"/>.
/// </summary>
public sealed class OutputGrammar
{
    /// <summary>Engines kept per vocabulary for later requests: enough for the requests one machine runs at once.</summary>
    private const int MaxIdleEngines = 16;

    private readonly ConditionalWeakTable<TokenVocabulary, ConcurrentBag<ConstraintEngine>> _idle = [];

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
    /// <paramref name="maxTokens"/> is the most tokens the request may produce: the text is whole by then, and the end
    /// token follows if a place is left for it. Throws <see cref="GrammarException"/> when even the shortest output does
    /// not fit, or the vocabulary lacks a single-byte token the grammar may need. Thread-safe.
    /// </summary>
    public TokenConstraint Start(TokenVocabulary vocabulary, IReadOnlySet<int> endTokens, int maxTokens)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        ArgumentNullException.ThrowIfNull(endTokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTokens);
        foreach (var terminal in Grammar.Classes)
        {
            if (!terminal.Overlaps(vocabulary.SingleBytes))
                throw new GrammarException($"the vocabulary has no single-byte token for any of {terminal}, which the grammar may need");
        }
        var engine = _idle.GetOrCreateValue(vocabulary).TryTake(out var idle) ? idle : new ConstraintEngine(Grammar, vocabulary, (vocabulary.Count + 63) / 64);
        var shortest = engine.Runner.Cost(engine.Start);
        if (shortest > maxTokens)
        {
            Return(engine);
            throw new GrammarException($"max_tokens is {maxTokens}, but the shortest output the schema allows may take {shortest} tokens: max_tokens must be at least {shortest}");
        }
        return new TokenConstraint(this, engine, endTokens, maxTokens);
    }

    internal void Return(ConstraintEngine engine)
    {
        var idle = _idle.GetOrCreateValue(engine.Vocabulary);
        if (idle.Count < MaxIdleEngines) idle.Add(engine);
    }
}
