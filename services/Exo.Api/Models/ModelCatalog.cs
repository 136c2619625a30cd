using Exo.Api.OpenAi;
using Exo.Inference;
using Exo.Inference.Model;
using Exo.Inference.Sampling;
using Exo.Ring;
using Exo.Text.Constraints;
using Exo.Text.Templates;
using Exo.Text.Tokenization;
using Exo.Text.ToolCalls;

namespace Exo.Api.Models;

/// <summary>A model the API serves: what it needs to turn messages into token ids and tokens back into text.</summary>
public sealed record ServedModel(
    string Id,
    string Directory,
    ModelConfig Config,
    Tokenizer Tokenizer,
    SpecialTokenInfo Special,
    ChatTemplate? Template,
    ToolCallSyntax ToolSyntax,
    OutputGrammars Grammars,
    DateTimeOffset Created)
{
    public int ContextLength => Config.MaxPositionEmbeddings;

    /// <summary>The most characters a prompt that fits the context can have.</summary>
    public long LongestPrompt => (long)ContextLength * Math.Max(1, Tokenizer.LongestToken) * 4;

    /// <summary>
    /// Refuses a prompt text too long to fit the context before it is tokenized, which costs far more memory and time
    /// than the text itself. Normalization can shrink text (composing characters, dropping spaces), hence the margin.
    /// </summary>
    public void RefuseHopeless(string text, string param)
    {
        var most = LongestPrompt;
        if (text.Length > most)
            throw OpenAiException.BadRequest(
                $"the prompt has {text.Length} characters, more than the model's context of {ContextLength} tokens can hold (at most {most} characters)",
                param, "context_length_exceeded");
    }

    /// <summary>
    /// Refuses, before anything runs, an output constraint the last stage could not start: a schema it cannot enforce
    /// (naming <paramref name="param"/>, the field that asked for it), or one whose shortest answer does not fit
    /// <paramref name="maxTokens"/> (naming <paramref name="maxTokensParam"/>).
    /// </summary>
    public void CheckOutput(OutputConstraint output, int maxTokens, string param, string maxTokensParam)
    {
        var length = (long)output.Prefix.Length + (output.Schema?.Length ?? 0) + output.Suffix.Length;
        if (length > RingCodec.MostConstraintChars)
            throw OpenAiException.BadRequest($"'{param}' makes an output format of {length} characters; at most {RingCodec.MostConstraintChars} are taken", param, "invalid_value");
        OutputGrammar grammar;
        try
        {
            grammar = Grammars.Compile(output);
        }
        catch (GrammarException e)
        {
            throw OpenAiException.BadRequest($"'{param}' cannot be enforced: {e.Message}", param, "invalid_value");
        }

        try
        {
            using var started = grammar.Start(Grammars.Vocabulary, Special.StopTokenIds, maxTokens);
        }
        catch (GrammarException e)
        {
            throw OpenAiException.BadRequest($"'{param}' does not fit: {e.Message}", maxTokensParam, "invalid_value");
        }
    }
}

/// <summary>The models this API serves, by id (the folder's name), loaded once at start.</summary>
public sealed class ModelCatalog
{
    private readonly Dictionary<string, ServedModel> _models;

    public ModelCatalog(IEnumerable<string> directories)
    {
        _models = new Dictionary<string, ServedModel>(StringComparer.Ordinal);
        foreach (var directory in directories)
        {
            var full = Path.GetFullPath(directory);
            if (!System.IO.Directory.Exists(full)) throw new ModelFormatException($"model folder '{full}' does not exist");
            var id = Path.GetFileName(full.TrimEnd(Path.DirectorySeparatorChar));
            var tokenizer = Tokenizer.FromModelDirectory(full);
            var template = TryTemplate(full);
            // Calls are read in the form of the template that renders tools: tool_use where there is one.
            var toolTemplate = template?.Sources is { } sources ? sources.Named?.GetValueOrDefault("tool_use") ?? sources.Default : null;
            _models[id] = new ServedModel(id, full, ModelConfig.Load(full), tokenizer, SpecialTokenInfo.FromModelDirectory(full, tokenizer),
                template, ToolCallSyntax.ForTemplate(toolTemplate), new OutputGrammars(TokenVocabulary.FromTokenizer(tokenizer)),
                new DateTimeOffset(System.IO.Directory.GetLastWriteTimeUtc(full)));
        }

        if (_models.Count == 0) throw new ModelFormatException("no model folders are configured (Api:Models)");
    }

    private static ChatTemplate? TryTemplate(string directory)
    {
        // A folder without a chat template still serves /v1/completions; /v1/chat/completions says why it cannot.
        try
        {
            var template = ChatTemplate.FromModelDirectory(directory);
            return template.Sources.IsEmpty ? null : template;
        }
        catch (TemplateException)
        {
            return null;
        }
    }

    public IReadOnlyCollection<ServedModel> Models => _models.Values;

    public ServedModel? Find(string id) => _models.GetValueOrDefault(id);
}
