using System.Collections.Concurrent;
using System.Text.Json;
using Exo.Text.Constraints;

namespace Exo.Inference.Sampling;

/// <summary>
/// The output constraints of one model: each constraint compiled once (requests that share a schema share its grammar;
/// at most <see cref="MostKept"/> are kept) and started against the model's vocabulary for a request.
/// </summary>
public sealed class OutputGrammars(TokenVocabulary vocabulary)
{
    public const int MostKept = 64;
    private readonly ConcurrentDictionary<OutputConstraint, OutputGrammar> _compiled = new();

    /// <summary>The bytes each of the model's tokens writes.</summary>
    public TokenVocabulary Vocabulary => vocabulary;

    /// <summary>One request's constraint, allowing <paramref name="maxTokens"/> tokens in all. Throws <see cref="GrammarException"/>.</summary>
    public TokenConstraint Start(OutputConstraint output, IReadOnlySet<int> endTokens, int maxTokens) =>
        Compile(output).Start(vocabulary, endTokens, maxTokens);

    /// <summary>The constraint's grammar; a schema that is not JSON, or that the grammar cannot enforce, throws <see cref="GrammarException"/>.</summary>
    public OutputGrammar Compile(OutputConstraint output)
    {
        if (_compiled.TryGetValue(output, out var known)) return known;
        var grammar = CompileNew(output);
        if (_compiled.Count >= MostKept) _compiled.Clear();
        _compiled[output] = grammar;
        return grammar;
    }

    private static OutputGrammar CompileNew(OutputConstraint output)
    {
        if (output.Schema is null) return OutputGrammar.Json(null, output.Prefix, output.Suffix);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(output.Schema, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new GrammarException($"the schema is not JSON: {e.Message}", e);
        }

        using (document) return OutputGrammar.Json(document.RootElement, output.Prefix, output.Suffix);
    }
}
