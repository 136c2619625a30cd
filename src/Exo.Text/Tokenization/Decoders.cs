using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Exo.Text.Tokenization;

/// <summary>A tokenizer.json decoder: turns the token strings into text pieces that are concatenated.</summary>
internal interface IDecoder
{
    List<string> DecodeChain(List<string> tokens);
}

internal sealed class SequenceDecoder(IReadOnlyList<IDecoder> steps) : IDecoder
{
    public IReadOnlyList<IDecoder> Steps => steps;

    public List<string> DecodeChain(List<string> tokens)
    {
        foreach (var step in steps)
        {
            tokens = step.DecodeChain(tokens);
        }
        return tokens;
    }
}

/// <summary>Maps byte-level characters back to bytes and reads them as UTF-8, invalid sequences becoming U+FFFD.</summary>
internal sealed class ByteLevelDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var token in tokens)
        {
            if (!ByteLevelAlphabet.TryAppendBytes(token, bytes))
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(token));
            }
        }
        return [Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes))];
    }
}

internal sealed class ReplaceDecoder(string pattern, string content) : IDecoder
{
    public string Pattern => pattern;
    public string Content => content;

    public List<string> DecodeChain(List<string> tokens) =>
        tokens.ConvertAll(t => t.Replace(pattern, content, StringComparison.Ordinal));
}

/// <summary>Turns runs of &lt;0xXX&gt; tokens into the text their bytes spell, or one U+FFFD per byte when they are not UTF-8.</summary>
internal sealed class ByteFallbackDecoder : IDecoder
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        foreach (var token in tokens)
        {
            if (TryParseByte(token, out var value))
            {
                pending.Add(value);
                continue;
            }
            Flush(pending, result);
            result.Add(token);
        }
        Flush(pending, result);
        return result;
    }

    internal static bool TryParseByte(string token, out byte value)
    {
        value = 0;
        return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
    }

    private static void Flush(List<byte> pending, List<string> result)
    {
        if (pending.Count == 0)
        {
            return;
        }
        try
        {
            result.Add(StrictUtf8.GetString(pending.ToArray()));
        }
        catch (DecoderFallbackException)
        {
            result.Add(new string('\uFFFD', pending.Count));
        }
        pending.Clear();
    }
}

internal sealed class FuseDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of a character from each piece.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) => tokens.ConvertAll(Apply);

    public string Apply(string token)
    {
        var from = 0;
        while (from < start && from < token.Length && token[from] == content)
        {
            from++;
        }
        var to = token.Length;
        while (token.Length - to < stop && to > from && token[to - 1] == content)
        {
            to--;
        }
        return token[from..to];
    }
}

/// <summary>SentencePiece's Metaspace decoder: the replacement character becomes a space, dropped at the very start.</summary>
internal sealed class MetaspaceDecoder(char replacement, bool stripLeading) : IDecoder
{
    public char Replacement => replacement;

    public List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (var i = 0; i < tokens.Count; i++)
        {
            var text = tokens[i].Replace(replacement, ' ');
            if (i == 0 && stripLeading && text.StartsWith(' '))
            {
                text = text[1..];
            }
            result.Add(text);
        }
        return result;
    }
}

internal static class DecoderReader
{
    public static IDecoder? Read(JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        var type = JsonRead.String(element, "type", "decoder");
        return type switch
        {
            "Sequence" => new SequenceDecoder(JsonRead.Array(element, "decoders", "Sequence decoder")
                .Select(e => Read(e) ?? throw new TokenizerFormatException("null step in a Sequence decoder")).ToList()),
            "ByteLevel" => new ByteLevelDecoder(),
            "Replace" => new ReplaceDecoder(JsonRead.StringPattern(element, "Replace decoder"), JsonRead.String(element, "content", "Replace decoder")),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => ReadStrip(element),
            "Metaspace" => ReadMetaspace(element),
            _ => throw new TokenizerFormatException($"unsupported decoder type '{type}'"),
        };
    }

    private static StripDecoder ReadStrip(JsonElement element)
    {
        var content = JsonRead.Char(element, "content", "Strip decoder");
        var start = JsonRead.Int(element, "start", "Strip decoder");
        var stop = JsonRead.Int(element, "stop", "Strip decoder");
        if (start < 0 || stop < 0)
        {
            throw new TokenizerFormatException("Strip decoder: start and stop must not be negative");
        }
        return new StripDecoder(content, start, stop);
    }

    private static MetaspaceDecoder ReadMetaspace(JsonElement element) => new(
        JsonRead.Char(element, "replacement", "Metaspace decoder"),
        JsonRead.PrependScheme(element, "Metaspace decoder") != "never");
}
