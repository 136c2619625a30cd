namespace Exo.Text.Tokenization;

/// <summary>An entry of tokenizer.json's <c>added_tokens</c>: matched in the raw text before any other step.</summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool LeftStrip, bool RightStrip, bool SingleWord, bool Normalized);

/// <summary>
/// Finds added tokens in text, leftmost first and longest at a position, widening a match over neighbouring
/// whitespace for lstrip/rstrip tokens and skipping single_word tokens that touch a word character.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        _byFirstChar = tokens
            .Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    /// <summary>Splits text into stretches of plain text (Token null) and matched added tokens.</summary>
    public List<(string Text, AddedToken? Token)> Split(string text)
    {
        var parts = new List<(string, AddedToken?)>();
        var plainStart = 0;
        var i = 0;
        while (i < text.Length)
        {
            var match = _byFirstChar.Count == 0 ? null : MatchAt(text, i);
            if (match is null)
            {
                i++;
                continue;
            }
            var start = i;
            var end = i + match.Content.Length;
            if (match.LeftStrip)
            {
                while (start > plainStart && char.IsWhiteSpace(text[start - 1]))
                {
                    start--;
                }
            }
            if (match.RightStrip)
            {
                while (end < text.Length && char.IsWhiteSpace(text[end]))
                {
                    end++;
                }
            }
            if (start > plainStart)
            {
                parts.Add((text[plainStart..start], null));
            }
            parts.Add((match.Content, match));
            plainStart = i = end;
        }
        if (plainStart < text.Length)
        {
            parts.Add((text[plainStart..], null));
        }
        return parts;
    }

    private AddedToken? MatchAt(string text, int position)
    {
        if (!_byFirstChar.TryGetValue(text[position], out var candidates))
        {
            return null;
        }
        foreach (var token in candidates)
        {
            if (string.CompareOrdinal(text, position, token.Content, 0, token.Content.Length) != 0)
            {
                continue;
            }
            var end = position + token.Content.Length;
            if (token.SingleWord && ((position > 0 && IsWordChar(text[position - 1])) || (end < text.Length && IsWordChar(text[end]))))
            {
                continue;
            }
            return token;
        }
        return null;
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
