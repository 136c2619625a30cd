namespace Exo.Text.Tokenization;

/// <summary>
/// Unicode Normalization Form C (UAX #15): canonical decomposition, canonical ordering, canonical composition,
/// with Hangul handled arithmetically. Tables come from <see cref="UnicodeNfcData"/>.
/// </summary>
internal static class UnicodeNfc
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Lazy<Tables> Data = new(Tables.Load);

    public static string Normalize(string text)
    {
        if (IsTriviallyComposed(text))
        {
            return text;
        }
        var tables = Data.Value;
        var codePoints = new List<int>(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            Decompose(rune.Value, tables, codePoints);
        }
        Reorder(codePoints, tables);
        Compose(codePoints, tables);
        var builder = new System.Text.StringBuilder(codePoints.Count);
        foreach (var cp in codePoints)
        {
            builder.AppendCodePoint(cp);
        }
        return builder.ToString();
    }

    /// <summary>Text below U+0300 has no combining marks and nothing that composes, so it is already NFC.</summary>
    private static bool IsTriviallyComposed(string text)
    {
        foreach (var c in text)
        {
            if (c >= 0x300)
            {
                return false;
            }
        }
        return true;
    }

    private static void Decompose(int cp, Tables tables, List<int> output)
    {
        if (cp >= SBase && cp < SBase + SCount)
        {
            var index = cp - SBase;
            output.Add(LBase + index / NCount);
            output.Add(VBase + index % NCount / TCount);
            if (index % TCount != 0)
            {
                output.Add(TBase + index % TCount);
            }
            return;
        }
        if (tables.Decompositions.TryGetValue(cp, out var parts))
        {
            foreach (var part in parts)
            {
                Decompose(part, tables, output);
            }
            return;
        }
        output.Add(cp);
    }

    private static void Reorder(List<int> cps, Tables tables)
    {
        // Stable insertion sort of each run of non-starters by combining class.
        for (var i = 1; i < cps.Count; i++)
        {
            var cls = tables.Class(cps[i]);
            if (cls == 0)
            {
                continue;
            }
            var j = i;
            while (j > 0 && tables.Class(cps[j - 1]) > cls)
            {
                (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
                j--;
            }
        }
    }

    private static void Compose(List<int> cps, Tables tables)
    {
        if (cps.Count == 0)
        {
            return;
        }
        var starter = tables.Class(cps[0]) == 0 ? 0 : -1;
        var write = 1;
        var lastClass = starter == 0 ? 0 : 256;
        for (var read = 1; read < cps.Count; read++)
        {
            var cp = cps[read];
            var cls = tables.Class(cp);
            var blocked = starter < 0 || (lastClass != 0 && lastClass >= cls) || (lastClass == 0 && write - 1 != starter);
            if (!blocked && TryCompose(cps[starter], cp, tables, out var composed))
            {
                cps[starter] = composed;
                continue;
            }
            if (cls == 0)
            {
                starter = write;
            }
            lastClass = cls;
            cps[write++] = cp;
        }
        cps.RemoveRange(write, cps.Count - write);
    }

    private static bool TryCompose(int first, int second, Tables tables, out int composed)
    {
        if (first >= LBase && first < LBase + LCount && second >= VBase && second < VBase + VCount)
        {
            composed = SBase + ((first - LBase) * VCount + (second - VBase)) * TCount;
            return true;
        }
        if (first >= SBase && first < SBase + SCount && (first - SBase) % TCount == 0 && second > TBase && second < TBase + TCount)
        {
            composed = first + (second - TBase);
            return true;
        }
        return tables.Compositions.TryGetValue(((long)first << 21) | (uint)second, out composed);
    }

    private sealed class Tables
    {
        public Dictionary<int, int[]> Decompositions { get; } = [];

        public Dictionary<long, int> Compositions { get; } = [];

        private readonly List<(int First, int Last, int Class)> _classes = [];

        public int Class(int cp)
        {
            int lo = 0, hi = _classes.Count - 1;
            while (lo <= hi)
            {
                var mid = (lo + hi) / 2;
                var (first, last, cls) = _classes[mid];
                if (cp < first)
                {
                    hi = mid - 1;
                }
                else if (cp > last)
                {
                    lo = mid + 1;
                }
                else
                {
                    return cls;
                }
            }
            return 0;
        }

        public static Tables Load()
        {
            static int Hex(string s) => int.Parse(s, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture);
            var tables = new Tables();
            var excluded = UnicodeNfcData.CompositionExclusions.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(Hex).ToHashSet();
            foreach (var entry in UnicodeNfcData.Decompositions.Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                var colon = entry.IndexOf(':');
                var cp = Hex(entry[..colon]);
                var parts = entry[(colon + 1)..].Split(' ').Select(Hex).ToArray();
                tables.Decompositions[cp] = parts;
                if (parts.Length == 2 && !excluded.Contains(cp))
                {
                    tables.Compositions[((long)parts[0] << 21) | (uint)parts[1]] = cp;
                }
            }
            foreach (var entry in UnicodeNfcData.CombiningClasses.Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                var colon = entry.IndexOf(':');
                var dash = entry.IndexOf('-');
                tables._classes.Add((Hex(entry[..dash]), Hex(entry[(dash + 1)..colon]), int.Parse(entry[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture)));
            }
            return tables;
        }
    }
}
