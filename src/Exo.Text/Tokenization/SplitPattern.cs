using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Exo.Text.Tokenization;

/// <summary>
/// A pre-tokenizer regex (written for Oniguruma / Rust) run with .NET's engine. Two differences are bridged:
/// possessive quantifiers, which .NET lacks, become atomic groups; and .NET matches UTF-16 units, so a
/// character outside the BMP is replaced by a BMP stand-in of the same class (letter, digit, mark, other)
/// before matching and the match positions are mapped back.
/// </summary>
internal sealed class SplitPattern
{
    private const char LetterStandIn = '\u4E00';
    private const char NumberStandIn = '\u0660';
    private const char MarkStandIn = '\u0300';
    private const char OtherStandIn = '\u00A6';

    private readonly Regex _regex;

    public SplitPattern(string pattern, bool isRegex)
    {
        var source = isRegex ? TranslatePossessive(pattern) : Regex.Escape(pattern);
        try
        {
            _regex = new Regex(source, RegexOptions.Compiled | RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new TokenizerFormatException($"split pattern '{pattern}' is not a supported regular expression: {e.Message}", e);
        }
    }

    /// <summary>Appends (start, length) of every match in <paramref name="text"/>, in order.</summary>
    public void FindMatches(string text, List<(int Start, int Length)> matches)
    {
        if (!HasSurrogates(text))
        {
            foreach (var m in _regex.EnumerateMatches(text))
            {
                matches.Add((m.Index, m.Length));
            }
            return;
        }

        var substituted = new StringBuilder(text.Length);
        var originalIndex = new List<int>(text.Length + 1);
        for (var i = 0; i < text.Length; i++)
        {
            originalIndex.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                substituted.Append(StandIn(char.ConvertToUtf32(text[i], text[i + 1])));
                i++;
            }
            else
            {
                substituted.Append(text[i]);
            }
        }
        originalIndex.Add(text.Length);
        foreach (var m in _regex.EnumerateMatches(substituted.ToString()))
        {
            var start = originalIndex[m.Index];
            matches.Add((start, originalIndex[m.Index + m.Length] - start));
        }
    }

    private static bool HasSurrogates(string text)
    {
        foreach (var c in text)
        {
            if (char.IsSurrogate(c))
            {
                return true;
            }
        }
        return false;
    }

    private static char StandIn(int codePoint) => CharUnicodeInfo.GetUnicodeCategory(codePoint) switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => LetterStandIn,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => NumberStandIn,
        UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => MarkStandIn,
        _ => OtherStandIn,
    };

    /// <summary>Rewrites <c>X*+</c>, <c>X++</c>, <c>X?+</c> and <c>X{n,m}+</c> as the atomic group <c>(?&gt;X*)</c>.</summary>
    internal static string TranslatePossessive(string pattern)
    {
        var output = new StringBuilder(pattern.Length + 16);
        var atomStarts = new Stack<int>();
        var lastAtomStart = -1;
        var i = 0;
        while (i < pattern.Length)
        {
            var c = pattern[i];
            switch (c)
            {
                case '\\':
                    lastAtomStart = output.Length;
                    i = CopyEscape(pattern, i, output);
                    continue;
                case '[':
                    lastAtomStart = output.Length;
                    i = CopyClass(pattern, i, output);
                    continue;
                case '(':
                    atomStarts.Push(output.Length);
                    output.Append(c);
                    lastAtomStart = -1;
                    i++;
                    continue;
                case ')':
                    output.Append(c);
                    lastAtomStart = atomStarts.Count > 0 ? atomStarts.Pop() : -1;
                    i++;
                    continue;
                case '*' or '+' or '?' or '{':
                    var end = c == '{' ? pattern.IndexOf('}', i) : i;
                    if (end < 0)
                    {
                        output.Append(c);
                        i++;
                        continue;
                    }
                    var quantifier = pattern[i..(end + 1)];
                    i = end + 1;
                    if (i < pattern.Length && pattern[i] == '+' && lastAtomStart >= 0)
                    {
                        output.Insert(lastAtomStart, "(?>");
                        output.Append(quantifier).Append(')');
                        i++;
                    }
                    else
                    {
                        output.Append(quantifier);
                        if (i < pattern.Length && pattern[i] == '?')
                        {
                            output.Append('?');
                            i++;
                        }
                    }
                    lastAtomStart = -1;
                    continue;
                case '|':
                    output.Append(c);
                    lastAtomStart = -1;
                    i++;
                    continue;
                default:
                    lastAtomStart = output.Length;
                    output.Append(c);
                    i++;
                    continue;
            }
        }
        return output.ToString();
    }

    private static int CopyEscape(string pattern, int i, StringBuilder output)
    {
        var end = Math.Min(i + 2, pattern.Length);
        if (end < pattern.Length && (pattern[i + 1] is 'p' or 'P') && pattern[end] == '{')
        {
            var close = pattern.IndexOf('}', end);
            end = close < 0 ? pattern.Length : close + 1;
        }
        output.Append(pattern, i, end - i);
        return end;
    }

    private static int CopyClass(string pattern, int i, StringBuilder output)
    {
        var j = i + 1;
        if (j < pattern.Length && pattern[j] == '^')
        {
            j++;
        }
        if (j < pattern.Length && pattern[j] == ']')
        {
            j++;
        }
        while (j < pattern.Length && pattern[j] != ']')
        {
            j += pattern[j] == '\\' ? 2 : 1;
        }
        j = Math.Min(j + 1, pattern.Length);
        output.Append(pattern, i, j - i);
        return j;
    }
}
