using System.Text;

namespace Exo.Text.Tokenization;

/// <summary>A tokenizer.json normalizer, applied to each stretch of text between added tokens.</summary>
internal interface INormalizer
{
    string Normalize(string text);
}

internal sealed class SequenceNormalizer(IReadOnlyList<INormalizer> steps) : INormalizer
{
    public string Normalize(string text)
    {
        foreach (var step in steps)
        {
            text = step.Normalize(text);
        }
        return text;
    }
}

internal sealed class ReplaceNormalizer(string pattern, string content) : INormalizer
{
    public string Normalize(string text) => text.Replace(pattern, content, StringComparison.Ordinal);
}

/// <summary>Prepends a string to non-empty text (SentencePiece's leading "▁").</summary>
internal sealed class PrependNormalizer(string prefix) : INormalizer
{
    public string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

internal sealed class LowercaseNormalizer : INormalizer
{
    public string Normalize(string text) => text.ToLowerInvariant();
}

/// <summary>Unicode canonical composition (NFC), with our own tables: the runtime's normalization is unavailable in invariant-globalization mode.</summary>
internal sealed class NfcNormalizer : INormalizer
{
    public string Normalize(string text) => UnicodeNfc.Normalize(text);
}

internal static class NormalizerReader
{
    public static INormalizer? Read(System.Text.Json.JsonElement element)
    {
        if (element.ValueKind == System.Text.Json.JsonValueKind.Null)
        {
            return null;
        }
        var type = JsonRead.String(element, "type", "normalizer");
        return type switch
        {
            "Sequence" => new SequenceNormalizer(JsonRead.Array(element, "normalizers", "Sequence normalizer")
                .Select(e => Read(e) ?? throw new TokenizerFormatException("null step in a Sequence normalizer")).ToList()),
            "Replace" => new ReplaceNormalizer(JsonRead.StringPattern(element, "Replace normalizer"), JsonRead.String(element, "content", "Replace normalizer")),
            "Prepend" => new PrependNormalizer(JsonRead.String(element, "prepend", "Prepend normalizer")),
            "Lowercase" => new LowercaseNormalizer(),
            "NFC" => new NfcNormalizer(),
            _ => throw new TokenizerFormatException($"unsupported normalizer type '{type}'"),
        };
    }
}

internal static class StringBuilderExtensions
{
    public static StringBuilder AppendCodePoint(this StringBuilder builder, int codePoint) =>
        codePoint < 0x10000 ? builder.Append((char)codePoint) : builder.Append(char.ConvertFromUtf32(codePoint));
}
