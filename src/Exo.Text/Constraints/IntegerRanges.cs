using System.Globalization;

namespace Exo.Text.Constraints;

/// <summary>
/// The integers of a range, written canonically (no leading zeros, no "-0"), as grammar alternatives built digit by
/// digit: a same-length range [lo, hi] is lo's first digit then a suffix from lo's, the first digits between then any
/// digits, or hi's first digit then a suffix up to hi's.
/// </summary>
internal static class IntegerRanges
{
    /// <summary>The largest magnitude the grammar writes: <see cref="JsonLexicon.MaxIntegerDigits"/> nines.</summary>
    public static readonly long Largest = (long)Math.Pow(10, JsonLexicon.MaxIntegerDigits) - 1;

    private static readonly ByteSet Digit = ByteSet.Range((byte)'0', (byte)'9');

    public static int Rule(GrammarBuilder g, long min, long max, string pointer)
    {
        var rule = g.Rule(pointer);
        if (min < 0) Add(g, rule, "-", Math.Max(1, -max), -min);
        if (max >= 0) Add(g, rule, "", Math.Max(0, min), max);
        return rule;
    }

    /// <summary>Adds the numbers of [lo, hi] (0 ≤ lo ≤ hi), each after <paramref name="sign"/>, as alternatives of <paramref name="rule"/>.</summary>
    private static void Add(GrammarBuilder g, int rule, string sign, long lo, long hi)
    {
        if (lo == 0)
        {
            g.Add(rule, g.Seq().Text(sign + "0"));
            lo = 1;
        }
        for (var digits = Digits(lo); lo <= hi; digits++)
        {
            var top = Math.Min(hi, (long)Math.Pow(10, digits) - 1);
            foreach (var alternative in SameLength(Text(lo), Text(top)))
            {
                var sequence = g.Seq().Text(sign);
                foreach (var set in alternative) sequence.Bytes(set);
                g.Add(rule, sequence);
            }
            lo = top + 1;
        }
    }

    /// <summary>The digit strings from <paramref name="lo"/> to <paramref name="hi"/>, both of one length, as runs of digit classes.</summary>
    private static List<List<ByteSet>> SameLength(string lo, string hi)
    {
        if (lo.Length == 0) return [[]];
        var first = (byte)lo[0];
        var last = (byte)hi[0];
        if (lo.AsSpan(1).IndexOfAnyExcept('0') < 0 && hi.AsSpan(1).IndexOfAnyExcept('9') < 0)
            return [[ByteSet.Range(first, last), .. Enumerable.Repeat(Digit, lo.Length - 1)]];
        if (first == last) return [.. SameLength(lo[1..], hi[1..]).Select(rest => (List<ByteSet>)[ByteSet.Of(first), .. rest])];
        var result = SameLength(lo[1..], new string('9', lo.Length - 1)).Select(rest => (List<ByteSet>)[ByteSet.Of(first), .. rest]).ToList();
        if (last - first > 1) result.Add([ByteSet.Range((byte)(first + 1), (byte)(last - 1)), .. Enumerable.Repeat(Digit, lo.Length - 1)]);
        result.AddRange(SameLength(new string('0', lo.Length - 1), hi[1..]).Select(rest => (List<ByteSet>)[ByteSet.Of(last), .. rest]));
        return result;
    }

    private static int Digits(long value) => Text(value).Length;

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);
}
