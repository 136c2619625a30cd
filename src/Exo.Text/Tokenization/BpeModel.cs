using System.Collections.Concurrent;

namespace Exo.Text.Tokenization;

/// <summary>
/// Byte-pair encoding over one pre-tokenized word: start from its characters (or UTF-8 byte tokens when a character
/// is not in the vocabulary and byte fallback is on) and repeatedly apply the lowest-ranked merge, leftmost first.
/// </summary>
internal sealed class BpeModel
{
    private const int CacheCapacity = 200_000;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<long, (int Rank, int Merged)> _merges;
    private readonly int? _unkId;
    private readonly bool _fuseUnk;
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;
    private readonly int[] _byteTokenIds;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    /// <param name="merges">Merges in rank order, as ids of the left part, the right part and the merged token.</param>
    /// <param name="ranks">Each merge's rank when several share one (SentencePiece: every split of a piece has the
    /// piece's score, and ties go to the leftmost pair); by default a merge's rank is its position.</param>
    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(int Left, int Right, int Merged)> merges, string? unkToken, bool fuseUnk, bool byteFallback, bool ignoreMerges,
        IReadOnlyList<int>? ranks = null)
    {
        _vocab = vocab;
        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (var i = 0; i < merges.Count; i++)
        {
            var (left, right, merged) = merges[i];
            _merges.TryAdd(PairKey(left, right), (ranks?[i] ?? i, merged));
        }
        if (unkToken is not null)
        {
            _unkId = vocab.TryGetValue(unkToken, out var unk)
                ? unk
                : throw new TokenizerFormatException($"unk_token '{unkToken}' is not in the vocabulary");
        }
        _fuseUnk = fuseUnk;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        _byteTokenIds = new int[256];
        for (var b = 0; b < 256; b++)
        {
            _byteTokenIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
        }
    }

    private static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    public void Encode(string word, List<int> output)
    {
        if (_ignoreMerges && _vocab.TryGetValue(word, out var whole))
        {
            output.Add(whole);
            return;
        }
        if (!_cache.TryGetValue(word, out var ids))
        {
            ids = Merge(word);
            if (_cache.Count >= CacheCapacity)
            {
                _cache.Clear();
            }
            _cache.TryAdd(word, ids);
        }
        output.AddRange(ids);
    }

    private int[] Merge(string word)
    {
        var symbols = InitialSymbols(word);
        var count = symbols.Count;
        if (count < 2)
        {
            return [.. symbols];
        }
        var ids = symbols.ToArray();
        var prev = new int[count];
        var next = new int[count];
        for (var i = 0; i < count; i++)
        {
            prev[i] = i - 1;
            next[i] = i + 1 < count ? i + 1 : -1;
        }
        var queue = new PriorityQueue<int, long>();
        for (var i = 0; i + 1 < count; i++)
        {
            Enqueue(queue, ids, i, i + 1);
        }
        while (queue.TryDequeue(out var position, out var priority))
        {
            var right = next[position];
            if (ids[position] < 0 || right < 0
                || !_merges.TryGetValue(PairKey(ids[position], ids[right]), out var merge)
                || merge.Rank != (int)(priority >> 32))
            {
                continue;
            }
            ids[position] = merge.Merged;
            ids[right] = -1;
            next[position] = next[right];
            if (next[right] >= 0)
            {
                prev[next[right]] = position;
                Enqueue(queue, ids, position, next[position]);
            }
            if (prev[position] >= 0)
            {
                Enqueue(queue, ids, prev[position], position);
            }
        }
        var result = new List<int>(count);
        for (var i = 0; i >= 0; i = next[i])
        {
            result.Add(ids[i]);
        }
        return [.. result];
    }

    private void Enqueue(PriorityQueue<int, long> queue, int[] ids, int left, int right)
    {
        if (_merges.TryGetValue(PairKey(ids[left], ids[right]), out var merge))
        {
            // Lowest rank first; among equal ranks the leftmost position.
            queue.Enqueue(left, ((long)merge.Rank << 32) | (uint)left);
        }
    }

    private List<int> InitialSymbols(string word)
    {
        var symbols = new List<int>(word.Length);
        Span<byte> utf8 = stackalloc byte[4];
        var previousWasUnk = false;
        foreach (var rune in word.EnumerateRunes())
        {
            var text = rune.ToString();
            if (_vocab.TryGetValue(text, out var id))
            {
                symbols.Add(id);
                previousWasUnk = false;
                continue;
            }
            if (_byteFallback)
            {
                var length = rune.EncodeToUtf8(utf8);
                var allKnown = true;
                for (var b = 0; b < length; b++)
                {
                    allKnown &= _byteTokenIds[utf8[b]] >= 0;
                }
                if (allKnown)
                {
                    for (var b = 0; b < length; b++)
                    {
                        symbols.Add(_byteTokenIds[utf8[b]]);
                    }
                    previousWasUnk = false;
                    continue;
                }
            }
            if (_unkId is { } unk && !(_fuseUnk && previousWasUnk))
            {
                symbols.Add(unk);
            }
            previousWasUnk = _unkId is not null;
        }
        return symbols;
    }
}
