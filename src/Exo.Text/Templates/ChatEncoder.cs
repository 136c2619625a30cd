using Exo.Text.Tokenization;

namespace Exo.Text.Templates;

/// <summary>transformers' padding strategies; for one conversation "longest" pads nothing but a multiple.</summary>
public enum PaddingStrategy
{
    DoNotPad,
    Longest,
    MaxLength,
}

/// <summary>The tokenizer-call arguments of apply_chat_template, for one conversation.</summary>
public sealed record ChatEncodingOptions
{
    public PaddingStrategy Padding { get; init; }

    public bool Truncation { get; init; }

    /// <summary>The length to truncate or pad to; the model's maximum length when null.</summary>
    public int? MaxLength { get; init; }

    public int? PadToMultipleOf { get; init; }

    /// <summary>"left" or "right"; the tokenizer's own side when null.</summary>
    public string? PaddingSide { get; init; }

    public bool AssistantMask { get; init; }
}

/// <summary>A tokenized conversation: ids, attention mask and, when asked for, the assistant mask.</summary>
public sealed record ChatEncoding(int[] InputIds, int[] AttentionMask, int[]? AssistantMask);

/// <summary>
/// Tokenizes a rendered conversation as apply_chat_template's call of the tokenizer does (no special tokens added),
/// truncating and padding one sequence, and builds transformers' assistant mask from the generation spans.
/// </summary>
public static class ChatEncoder
{
    public static ChatEncoding Encode(Tokenizer tokenizer, TokenizerCallDefaults defaults, ChatRendering rendering, ChatEncodingOptions options)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(defaults);
        ArgumentNullException.ThrowIfNull(rendering);
        ArgumentNullException.ThrowIfNull(options);
        var maxLength = options.MaxLength ?? defaults.MaxLength;
        if (options.Truncation && options.Padding != PaddingStrategy.DoNotPad && options.PadToMultipleOf is { } multiple && maxLength is { } limit && limit % multiple != 0)
        {
            throw Error($"Truncation and padding are both activated but truncation length ({limit}) is not a multiple of pad_to_multiple_of ({multiple}).");
        }
        if (options.Padding != PaddingStrategy.DoNotPad && defaults.PadTokenId is null)
        {
            throw Error("Asking to pad but the tokenizer does not have a padding token. Please select a token to use as `pad_token` `(tokenizer.pad_token = tokenizer.eos_token e.g.)` or add a new pad token via `tokenizer.add_special_tokens({'pad_token': '[PAD]'})`.");
        }

        var ids = tokenizer.Encode(rendering.Text, addSpecialTokens: false).ToList();
        var spans = options.AssistantMask
            ? (TokenCharSpans.Compute(tokenizer, ids, rendering.Text)
                ?? throw Error("cannot build the assistant mask: the tokens do not decode back to the rendered text")).Select(s => (CharSpan?)s).ToList()
            : null;
        if (options.Truncation && maxLength is { } max && ids.Count > max)
        {
            var cut = ids.Count - max;
            var from = defaults.TruncationSide == "left" ? 0 : max;
            ids.RemoveRange(from, cut);
            spans?.RemoveRange(from, cut);
        }

        var target = options.Padding switch
        {
            PaddingStrategy.Longest => ids.Count,
            PaddingStrategy.MaxLength => maxLength,
            _ => null,
        };
        if (target is { } length && options.PadToMultipleOf is { } m && m > 0 && length % m != 0)
        {
            target = (length / m + 1) * m;
        }
        var attention = Enumerable.Repeat(1, ids.Count).ToList();
        if (target is { } padded && padded > ids.Count)
        {
            var count = padded - ids.Count;
            var at = (options.PaddingSide ?? defaults.PaddingSide) == "left" ? 0 : ids.Count;
            ids.InsertRange(at, Enumerable.Repeat(defaults.PadTokenId!.Value, count));
            attention.InsertRange(at, Enumerable.Repeat(0, count));
            spans?.InsertRange(at, Enumerable.Repeat<CharSpan?>(null, count));
        }
        return new ChatEncoding([.. ids], [.. attention], spans is null ? null : BuildAssistantMask(rendering.Generation, spans));
    }

    /// <summary>
    /// transformers' loop: tokens from the one holding a block's first character to the one holding its last are 1;
    /// a block whose start was truncated away ends the loop, one whose end was (or whose end is token 0) runs to the end.
    /// </summary>
    private static int[] BuildAssistantMask(IReadOnlyList<CharSpan> generation, List<CharSpan?> tokens)
    {
        var mask = new int[tokens.Count];
        int? CharToToken(int index)
        {
            var found = tokens.FindIndex(span => span is { } s && s.Contains(index));
            return found < 0 ? null : found;
        }
        foreach (var block in generation)
        {
            if (CharToToken(block.Start) is not { } start)
            {
                break;
            }
            var end = CharToToken(block.End - 1);
            var stop = end is { } last and not 0 ? last + 1 : mask.Length;
            for (var t = start; t < stop; t++)
            {
                mask[t] = 1;
            }
        }
        return mask;
    }

    private static TemplateException Error(string message) => new(TemplateErrorKind.Value, message, 0);
}
