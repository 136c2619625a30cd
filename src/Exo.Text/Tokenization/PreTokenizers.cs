using System.Text.Json;

namespace Exo.Text.Tokenization;

/// <summary>A tokenizer.json pre-tokenizer: splits (and may rewrite) pieces of one stretch of text.</summary>
internal interface IPreTokenizer
{
    /// <param name="pieces">The pieces so far; replaced by the result.</param>
    /// <param name="atTextStart">Whether this stretch starts the input (no added token before it).</param>
    void PreTokenize(List<string> pieces, bool atTextStart);
}

internal enum SplitBehavior
{
    Removed,
    Isolated,
    MergedWithPrevious,
    MergedWithNext,
    Contiguous,
}

internal sealed class SequencePreTokenizer(IReadOnlyList<IPreTokenizer> steps) : IPreTokenizer
{
    public void PreTokenize(List<string> pieces, bool atTextStart)
    {
        foreach (var step in steps)
        {
            step.PreTokenize(pieces, atTextStart);
        }
    }
}

/// <summary>Splits every piece around the matches of a pattern, keeping matches and gaps as the behavior says.</summary>
internal sealed class SplitPreTokenizer(SplitPattern pattern, SplitBehavior behavior, bool invert) : IPreTokenizer
{
    public void PreTokenize(List<string> pieces, bool atTextStart)
    {
        var result = new List<string>(pieces.Count * 4);
        var matches = new List<(int Start, int Length)>();
        foreach (var piece in pieces)
        {
            matches.Clear();
            pattern.FindMatches(piece, matches);
            Split(piece, matches, result);
        }
        pieces.Clear();
        pieces.AddRange(result);
    }

    private void Split(string text, List<(int Start, int Length)> matches, List<string> output)
    {
        // Spans covering the whole text, each flagged as delimiter (a match, unless inverted) or content.
        var spans = new List<(int Start, int End, bool Delimiter)>(matches.Count * 2 + 1);
        var position = 0;
        foreach (var (start, length) in matches)
        {
            if (length == 0)
            {
                continue;
            }
            if (start > position)
            {
                spans.Add((position, start, invert));
            }
            spans.Add((start, start + length, !invert));
            position = start + length;
        }
        if (position < text.Length)
        {
            spans.Add((position, text.Length, invert));
        }

        var pendingStart = -1;
        for (var i = 0; i < spans.Count; i++)
        {
            var (start, end, delimiter) = spans[i];
            if (!delimiter)
            {
                if (pendingStart >= 0)
                {
                    output.Add(text[pendingStart..end]);
                    pendingStart = -1;
                }
                else if (behavior == SplitBehavior.MergedWithPrevious && i + 1 < spans.Count)
                {
                    pendingStart = start;
                }
                else
                {
                    output.Add(text[start..end]);
                }
                continue;
            }
            switch (behavior)
            {
                case SplitBehavior.Removed:
                    break;
                case SplitBehavior.Isolated:
                    output.Add(text[start..end]);
                    break;
                case SplitBehavior.MergedWithPrevious:
                    output.Add(text[(pendingStart >= 0 ? pendingStart : start)..end]);
                    pendingStart = -1;
                    break;
                case SplitBehavior.MergedWithNext:
                    if (pendingStart >= 0)
                    {
                        output.Add(text[pendingStart..start]);
                    }
                    pendingStart = start;
                    break;
                case SplitBehavior.Contiguous:
                    if (i + 1 < spans.Count && spans[i + 1].Delimiter)
                    {
                        pendingStart = pendingStart >= 0 ? pendingStart : start;
                    }
                    else
                    {
                        output.Add(text[(pendingStart >= 0 ? pendingStart : start)..end]);
                        pendingStart = -1;
                    }
                    break;
            }
        }
        if (pendingStart >= 0)
        {
            output.Add(text[pendingStart..]);
        }
    }
}

/// <summary>GPT-2 byte-level: optional leading space, optional GPT-2 split regex, then bytes mapped to visible characters.</summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : IPreTokenizer
{
    internal const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly SplitPreTokenizer Gpt2Split = new(new SplitPattern(Gpt2Pattern, isRegex: true), SplitBehavior.Isolated, invert: false);

    public void PreTokenize(List<string> pieces, bool atTextStart)
    {
        if (addPrefixSpace)
        {
            for (var i = 0; i < pieces.Count; i++)
            {
                if (!pieces[i].StartsWith(' '))
                {
                    pieces[i] = " " + pieces[i];
                }
            }
        }
        if (useRegex)
        {
            Gpt2Split.PreTokenize(pieces, atTextStart);
        }
        for (var i = 0; i < pieces.Count; i++)
        {
            pieces[i] = ByteLevelAlphabet.Encode(pieces[i]);
        }
    }
}

/// <summary>SentencePiece's Metaspace: spaces become the replacement character, with an optional prefix and split before each.</summary>
internal sealed class MetaspacePreTokenizer(char replacement, string prependScheme, bool split) : IPreTokenizer
{
    public void PreTokenize(List<string> pieces, bool atTextStart)
    {
        var result = new List<string>(pieces.Count * 4);
        for (var p = 0; p < pieces.Count; p++)
        {
            var text = pieces[p].Replace(' ', replacement);
            var prepend = prependScheme == "always" || (prependScheme == "first" && atTextStart && p == 0);
            if (prepend && text.Length > 0 && text[0] != replacement)
            {
                text = replacement + text;
            }
            if (!split)
            {
                result.Add(text);
                continue;
            }
            var start = 0;
            for (var i = 1; i < text.Length; i++)
            {
                if (text[i] == replacement)
                {
                    result.Add(text[start..i]);
                    start = i;
                }
            }
            if (text.Length > 0)
            {
                result.Add(text[start..]);
            }
        }
        pieces.Clear();
        pieces.AddRange(result);
    }
}

internal static class PreTokenizerReader
{
    public static IPreTokenizer? Read(JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        var type = JsonRead.String(element, "type", "pre_tokenizer");
        return type switch
        {
            "Sequence" => new SequencePreTokenizer(JsonRead.Array(element, "pretokenizers", "Sequence pre_tokenizer")
                .Select(e => Read(e) ?? throw new TokenizerFormatException("null step in a Sequence pre_tokenizer")).ToList()),
            "ByteLevel" => new ByteLevelPreTokenizer(JsonRead.Bool(element, "add_prefix_space", true), JsonRead.Bool(element, "use_regex", true)),
            "Split" => ReadSplit(element),
            "Metaspace" => ReadMetaspace(element),
            _ => throw new TokenizerFormatException($"unsupported pre_tokenizer type '{type}'"),
        };
    }

    private static SplitPreTokenizer ReadSplit(JsonElement element)
    {
        var pattern = JsonRead.Property(element, "pattern", "Split pre_tokenizer");
        SplitPattern compiled;
        if (JsonRead.Optional(pattern, "Regex") is { ValueKind: JsonValueKind.String } regex)
        {
            compiled = new SplitPattern(regex.GetString()!, isRegex: true);
        }
        else if (JsonRead.Optional(pattern, "String") is { ValueKind: JsonValueKind.String } literal)
        {
            compiled = new SplitPattern(literal.GetString()!, isRegex: false);
        }
        else
        {
            throw new TokenizerFormatException("Split pre_tokenizer: pattern must be {\"Regex\": ...} or {\"String\": ...}");
        }
        var behaviorName = JsonRead.String(element, "behavior", "Split pre_tokenizer");
        if (!Enum.TryParse<SplitBehavior>(behaviorName, out var behavior))
        {
            throw new TokenizerFormatException($"Split pre_tokenizer: unknown behavior '{behaviorName}'");
        }
        return new SplitPreTokenizer(compiled, behavior, JsonRead.Bool(element, "invert", false));
    }

    private static MetaspacePreTokenizer ReadMetaspace(JsonElement element) => new(
        JsonRead.Char(element, "replacement", "Metaspace pre_tokenizer"),
        JsonRead.PrependScheme(element, "Metaspace pre_tokenizer"),
        JsonRead.Bool(element, "split", true));
}
