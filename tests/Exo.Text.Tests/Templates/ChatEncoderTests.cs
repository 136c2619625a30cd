using System.Text.Json;
using Exo.Text.Templates;
using Exo.Text.Tokenization;

namespace Exo.Text.Tests.Templates;

/// <summary>
/// apply_chat_template's tokenizer call for one conversation: truncation, padding and transformers' assistant mask
/// (tokens from char_to_token(start) to char_to_token(end - 1) of each generation block), on real tokenizers.
/// </summary>
public sealed class ChatEncoderTests
{
    private const string Generation = "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' %}{% generation %}{{ m.content }}<|im_end|>{% endgeneration %}{% else %}{{ m.content }}<|im_end|>{% endif %}\n\n{% endfor %}";

    private static readonly JsonElement Messages = JsonDocument.Parse("""
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello! 你好"}, {"role": "user", "content": "Bye"}]
        """).RootElement;

    private static string Folder(string name) => Path.Combine(RepositoryPaths.Shared, "realtok", name);

    private static ChatEncoding Encode(string model, ChatEncodingOptions options, TokenizerCallDefaults? defaults = null, string template = Generation)
    {
        var tokenizer = Tokenizer.FromModelDirectory(Folder(model));
        var rendering = ChatTemplate.FromModelDirectory(Folder(model)).Apply(Messages, new ChatTemplateOptions { Template = template });
        return ChatEncoder.Encode(tokenizer, defaults ?? TokenizerCallDefaults.FromModelDirectory(Folder(model), tokenizer), rendering, options);
    }

    private static int[] Ones(int[] mask) => [.. mask.Select((bit, i) => (bit, i)).Where(p => p.bit == 1).Select(p => p.i)];

    [Fact]
    public void MaskCoversTheAssistantTokensOfByteLevelBpe()
    {
        var encoded = Encode("qwen2.5-instruct", new ChatEncodingOptions { AssistantMask = true });
        // Qwen tokens 18..22: "Hello", "!", " ", "你好", "<|im_end|>"; the "\n\n" after the block is not the assistant's.
        Assert.Equal([9707, 0, 220, 108386, 151645], encoded.InputIds[18..23]);
        Assert.Equal(Enumerable.Range(18, 5), Ones(encoded.AssistantMask!));
        Assert.All(encoded.AttentionMask, bit => Assert.Equal(1, bit));
    }

    [Fact]
    public void MaskLinesUpSentencePieceTokensDespiteThePrependedSpace()
    {
        var encoded = Encode("tinyllama-1.1b-chat-v1.0", new ChatEncodingOptions { AssistantMask = true });
        // "Hello" is token 48 ("▁" was prepended to the text, which starts with "<"); "<|im_end|>" is spelled out in 7 tokens.
        var hello = Array.IndexOf(encoded.InputIds, 10994);
        Assert.Equal(48, hello);
        Assert.Equal(Enumerable.Range(48, 12), Ones(encoded.AssistantMask!));
        Assert.Equal(13, encoded.InputIds[60]);
    }

    [Fact]
    public void TruncationCutsTheRightSideAndABlockCutAtItsStartEndsTheMask()
    {
        var full = Encode("qwen2.5-instruct", new ChatEncodingOptions());
        var cut = Encode("qwen2.5-instruct", new ChatEncodingOptions { Truncation = true, MaxLength = 10, AssistantMask = true });
        Assert.Equal(full.InputIds[..10], cut.InputIds);
        Assert.All(cut.AssistantMask!, bit => Assert.Equal(0, bit));
        // Cut inside the block: its end is gone, so the mask runs to the end.
        var inside = Encode("qwen2.5-instruct", new ChatEncodingOptions { Truncation = true, MaxLength = 20, AssistantMask = true });
        Assert.Equal([18, 19], Ones(inside.AssistantMask!));
    }

    [Fact]
    public void LeftTruncationAndLeftPaddingShiftTheMask()
    {
        var tokenizer = Tokenizer.FromModelDirectory(Folder("qwen2.5-instruct"));
        var left = TokenizerCallDefaults.FromModelDirectory(Folder("qwen2.5-instruct"), tokenizer) with { TruncationSide = "left" };
        var full = Encode("qwen2.5-instruct", new ChatEncodingOptions());
        var cut = Encode("qwen2.5-instruct", new ChatEncodingOptions { Truncation = true, MaxLength = 20, AssistantMask = true }, left);
        Assert.Equal(full.InputIds[^20..], cut.InputIds);
        Assert.Equal(Enumerable.Range(18 - 11, 5), Ones(cut.AssistantMask!));

        var padded = Encode("qwen2.5-instruct", new ChatEncodingOptions { Padding = PaddingStrategy.MaxLength, MaxLength = 40, PaddingSide = "left", AssistantMask = true });
        Assert.Equal(40, padded.InputIds.Length);
        Assert.All(padded.InputIds[..9], id => Assert.Equal(151643, id));
        Assert.Equal(Enumerable.Repeat(0, 9).Concat(Enumerable.Repeat(1, 31)), padded.AttentionMask);
        Assert.Equal(Enumerable.Range(18 + 9, 5), Ones(padded.AssistantMask!));
    }

    [Fact]
    public void PaddingToAMultipleAndLongest()
    {
        var longest = Encode("qwen2.5-instruct", new ChatEncodingOptions { Padding = PaddingStrategy.Longest });
        Assert.Equal(31, longest.InputIds.Length);
        var multiple = Encode("qwen2.5-instruct", new ChatEncodingOptions { Padding = PaddingStrategy.Longest, PadToMultipleOf = 8 });
        Assert.Equal(32, multiple.InputIds.Length);
        Assert.Equal(151643, multiple.InputIds[^1]);
        Assert.Equal(0, multiple.AttentionMask[^1]);
    }

    [Fact]
    public void PaddingWithoutAPadTokenAndAnIncompatibleMultipleAreTransformersErrors()
    {
        var noPad = Assert.Throws<TemplateException>(() => Encode("llama-3.2-instruct", new ChatEncodingOptions { Padding = PaddingStrategy.Longest }));
        Assert.StartsWith("Asking to pad but the tokenizer does not have a padding token.", noPad.Detail);
        var multiple = Assert.Throws<TemplateException>(() =>
            Encode("qwen2.5-instruct", new ChatEncodingOptions { Padding = PaddingStrategy.MaxLength, Truncation = true, MaxLength = 10, PadToMultipleOf = 4 }));
        Assert.Equal("Truncation and padding are both activated but truncation length (10) is not a multiple of pad_to_multiple_of (4).", multiple.Detail);
    }

    [Fact]
    public void ABlockEndingInTokenZeroMarksEverythingAsTransformersDoes()
    {
        // "xy" is one Qwen token: the block's last character is in token 0, and `end_token + 1 if end_token else len` runs to the end.
        var encoded = Encode("qwen2.5-instruct", new ChatEncodingOptions { AssistantMask = true }, template: "{{ 'x' }}{% generation %}y{% endgeneration %} hello world");
        Assert.True(encoded.InputIds.Length > 1);
        Assert.All(encoded.AssistantMask!, bit => Assert.Equal(1, bit));
    }

    [Fact]
    public void TextTheNormalizerChangesCannotBeMaskedAndSaysSo()
    {
        // Qwen's NFC normalizer composes "e" + U+0301, so the tokens no longer spell the rendered text character for character.
        var tokenizer = Tokenizer.FromModelDirectory(Folder("qwen2.5-instruct"));
        var messages = JsonDocument.Parse("[{\"role\": \"assistant\", \"content\": \"caf\\u0065\\u0301\"}]").RootElement;
        var rendering = ChatTemplate.FromSource(Generation).Apply(messages, new ChatTemplateOptions());
        var error = Assert.Throws<TemplateException>(() =>
            ChatEncoder.Encode(tokenizer, TokenizerCallDefaults.FromModelDirectory(Folder("qwen2.5-instruct"), tokenizer), rendering, new ChatEncodingOptions { AssistantMask = true }));
        Assert.Equal("cannot build the assistant mask: the tokens do not decode back to the rendered text", error.Detail);
        Assert.NotEmpty(ChatEncoder.Encode(tokenizer, TokenizerCallDefaults.FromModelDirectory(Folder("qwen2.5-instruct"), tokenizer), rendering, new ChatEncodingOptions()).InputIds);
    }
}
