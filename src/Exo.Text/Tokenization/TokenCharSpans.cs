using System.Text;

namespace Exo.Text.Tokenization;

/// <summary>
/// Which characters of a text each of its tokens stands for (what the tokenizers library keeps as offsets, and
/// transformers' <c>char_to_token</c> reads). Found by decoding the tokens one at a time and lining the decoded text up
/// with the original: the tokenizers here change text only by adding spaces (SentencePiece's prepended "▁"), so every
/// other character must match. A token that completes no character (part of a multi-byte one) stands for the next
/// character decoded.
/// </summary>
public static class TokenCharSpans
{
    /// <summary>One span per id, in <paramref name="text"/>'s UTF-16 indices; null when the decoded tokens do not line up with the text.</summary>
    public static CharSpan[]? Compute(Tokenizer tokenizer, IReadOnlyList<int> ids, string text)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(text);
        var decoded = new StringBuilder();
        var decodedSpans = new CharSpan[ids.Count];
        var pending = new List<int>();
        var decoder = tokenizer.CreateDecoder(skipSpecialTokens: false);
        void Place(string piece, int? token)
        {
            if (piece.Length == 0)
            {
                if (token is { } held)
                {
                    pending.Add(held);
                }
                return;
            }
            var start = decoded.Length;
            var firstChar = char.IsHighSurrogate(piece[0]) && piece.Length > 1 ? 2 : 1;
            foreach (var held in pending)
            {
                decodedSpans[held] = new CharSpan(start, start + firstChar);
            }
            pending.Clear();
            if (token is { } index)
            {
                decodedSpans[index] = new CharSpan(start, start + piece.Length);
            }
            decoded.Append(piece);
        }
        for (var i = 0; i < ids.Count; i++)
        {
            Place(decoder.Add(ids[i]), i);
        }
        Place(decoder.Flush(), null);
        foreach (var held in pending)
        {
            decodedSpans[held] = new CharSpan(decoded.Length, decoded.Length);
        }

        if (AlignDecoded(decoded.ToString(), text) is not { } toText)
        {
            return null;
        }
        return Array.ConvertAll(decodedSpans, span => span.End > span.Start
            ? new CharSpan(toText[span.Start], toText[span.End - 1] + 1)
            : new CharSpan(toText[span.Start], toText[span.Start]));
    }

    /// <summary>For each index of the decoded text (and one past its end), the index of the text it stands for.</summary>
    private static int[]? AlignDecoded(string decoded, string text)
    {
        var map = new int[decoded.Length + 1];
        var t = 0;
        for (var d = 0; d < decoded.Length; d++)
        {
            map[d] = t;
            if (t < text.Length && decoded[d] == text[t])
            {
                t++;
            }
            else if (decoded[d] != ' ')
            {
                return null;
            }
        }
        map[decoded.Length] = t;
        return t == text.Length ? map : null;
    }
}
