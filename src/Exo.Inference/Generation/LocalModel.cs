using Exo.Inference.Backends;
using Exo.Inference.Model;
using Exo.Inference.Weights;
using Exo.Text.Constraints;
using Exo.Text.Templates;
using Exo.Text.Tokenization;

namespace Exo.Inference.Generation;

/// <summary>
/// A whole model with its tokenizer, special tokens and chat template, loaded from one Hugging Face folder: what
/// single-machine generation needs.
/// </summary>
public sealed class LocalModel : IDisposable
{
    private readonly Lazy<ChatTemplate> _template;
    private readonly Lazy<TokenVocabulary> _vocabulary;

    private LocalModel(string directory, IModelStage model, Tokenizer tokenizer, SpecialTokenInfo special, Func<ChatTemplate> template)
    {
        Directory = directory;
        Model = model;
        Tokenizer = tokenizer;
        Special = special;
        Generator = new Generator(model);
        _template = new Lazy<ChatTemplate>(template);
        _vocabulary = new Lazy<TokenVocabulary>(() => TokenVocabulary.FromTokenizer(tokenizer));
    }

    public string Directory { get; }
    public IModelStage Model { get; }
    public Tokenizer Tokenizer { get; }
    public SpecialTokenInfo Special { get; }
    public Generator Generator { get; }

    /// <summary>The bytes each token writes, for structured output: built on first use, then shared.</summary>
    public TokenVocabulary Vocabulary => _vocabulary.Value;

    /// <summary>The model's own chat template; a folder without one is an error when first asked for.</summary>
    public ChatTemplate ChatTemplate => _template.Value;

    /// <summary>Loads a Hugging Face model folder, or a GGUF file with its embedded tokenizer and chat template.</summary>
    public static LocalModel Load(string directory, BackendOptions? backend = null, DType? quantize = null)
    {
        Tokenizer tokenizer;
        SpecialTokenInfo special;
        Func<ChatTemplate> template;
        if (ModelPath.IsGguf(directory))
        {
            using var file = GgufFile.Open(directory);
            tokenizer = GgufTokenizer.Read(file.Metadata);
            special = tokenizer.SpecialTokens;
            var source = file.Metadata.OptionalString(GgufTokenizer.ChatTemplate);
            template = () => source is null
                ? throw new TemplateException(TemplateErrorKind.Value, $"{directory} has no {GgufTokenizer.ChatTemplate}", 0)
                : ChatTemplate.FromSource(source, special.BosToken, special.EosToken);
        }
        else
        {
            tokenizer = Tokenizer.FromModelDirectory(directory);
            special = SpecialTokenInfo.FromModelDirectory(directory, tokenizer);
            template = () => ChatTemplate.FromModelDirectory(directory);
        }

        var model = StageLoader.Load(directory, null, backend ?? new BackendOptions(), quantize);
        if (tokenizer.VocabSize > model.Config.VocabSize)
        {
            model.Dispose();
            throw new ModelFormatException($"{directory}: the tokenizer has {tokenizer.VocabSize} tokens but the model's vocabulary is {model.Config.VocabSize}");
        }

        return new LocalModel(directory, model, tokenizer, special, template);
    }

    /// <summary>Renders a conversation with the chat template and tokenizes it (the template writes its own BOS).</summary>
    public int[] EncodeChat(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true) =>
        Tokenizer.Encode(ChatTemplate.Render(messages, null, addGenerationPrompt), addSpecialTokens: false);

    public void Dispose() => Model.Dispose();
}
