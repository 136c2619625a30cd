using System.Numerics;

namespace Exo.Text.Constraints;

/// <summary>
/// One request's progress through an <see cref="OutputGrammar"/>: which tokens may come next, given the text so far
/// and the tokens left. A token is allowed only if the grammar can still be completed in the tokens that would remain
/// after it (counted in bytes, each of which some single token writes), so the output always closes within
/// <see cref="MaxTokens"/>. Not thread-safe; the per-token calls allocate nothing once the states they meet are cached.
/// </summary>
public sealed class TokenConstraint
{
    // Bounds on what one request remembers: automaton configurations (1 KB of transitions each) and cached masks.
    private const int MaxConfigs = 4096;
    private const int MaxCachedMasks = 128;

    private readonly GrammarRunner _runner;
    private readonly TokenVocabulary _vocabulary;
    private readonly TokenTrie _trie;
    private readonly bool[] _isEnd;
    private readonly int[] _endTokens;
    private readonly ulong[] _allowed;          // [words] this step's mask
    private readonly int[] _configAtDepth;      // the trie walk's configuration after each depth of bytes
    private readonly Dictionary<int, CachedMask> _masks = [];
    private readonly Stack<ulong[]> _spareMasks = new();
    private int _config;
    private bool _ended;

    internal TokenConstraint(Grammar grammar, TokenVocabulary vocabulary, IReadOnlySet<int> endTokens, int maxTokens)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        ArgumentNullException.ThrowIfNull(endTokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTokens);
        foreach (var terminal in grammar.Classes)
        {
            if (!terminal.Overlaps(vocabulary.SingleBytes))
                throw new GrammarException($"the vocabulary has no single-byte token for any of {terminal}, which the grammar may need");
        }
        _runner = new GrammarRunner(grammar);
        _config = _runner.Start();
        var shortest = _runner.Cost(_config);
        if (shortest > maxTokens) throw new GrammarException($"the shortest output allowed takes up to {shortest} tokens; max_tokens is {maxTokens}");

        _vocabulary = vocabulary;
        _trie = vocabulary.Trie;
        _endTokens = [.. endTokens.Where(t => t >= 0)];
        _isEnd = new bool[Math.Max(vocabulary.Count, _endTokens.Length == 0 ? 0 : _endTokens.Max() + 1)];
        foreach (var t in _endTokens) _isEnd[t] = true;
        _allowed = new ulong[(_isEnd.Length + 63) / 64];
        _configAtDepth = new int[_trie.MaxDepth + 1];
        MaxTokens = maxTokens;
    }

    public int MaxTokens { get; }

    /// <summary>Tokens accepted so far, the end token included.</summary>
    public int Accepted { get; private set; }

    /// <summary>The text so far is a whole output: an end token is allowed now.</summary>
    public bool CanEnd => !_ended && _runner.Accepts(_config);

    /// <summary>The output is whole and nothing may follow it (or its end token was accepted): only end tokens are allowed.</summary>
    public bool IsComplete => _ended || (_runner.Accepts(_config) && !_runner.CanContinue(_config));

    public bool Allows(int token)
    {
        var left = MaxTokens - Accepted - 1;
        if (_ended || left < 0) return false;
        if ((uint)token < (uint)_isEnd.Length && _isEnd[token]) return _runner.Accepts(_config);
        var after = After(token);
        return after != GrammarRunner.Dead && _runner.Cost(after) <= left;
    }

    /// <summary>Sets every logit whose token is not allowed now to negative infinity; ids past the vocabulary are never allowed.</summary>
    public void Mask(Span<float> logits)
    {
        if (_ended) throw new InvalidOperationException("the output has ended: its end token was accepted");
        var left = MaxTokens - Accepted - 1;
        var allowed = _allowed.AsSpan();
        if (left < 0)
        {
            allowed.Clear();
        }
        else
        {
            var cached = CachedMaskOf(_config);
            if (cached.MaxCost <= left) cached.Bits.CopyTo(allowed);
            else Walk(_config, left, allowed);
            if (_runner.Accepts(_config))
            {
                foreach (var t in _endTokens) allowed[t >> 6] |= 1UL << (t & 63);
            }
        }
        Apply(allowed, logits);
    }

    /// <summary>Advances past <paramref name="token"/>; throws if it is not allowed now.</summary>
    public void Accept(int token)
    {
        if (!Allows(token)) throw new InvalidOperationException($"token {token} is not allowed by the output grammar here");
        Accepted++;
        if ((uint)token < (uint)_isEnd.Length && _isEnd[token])
        {
            _ended = true;
            return;
        }
        _config = After(token);
        if (_runner.ConfigCount > MaxConfigs)
        {
            ForgetMasks();
            _config = _runner.Rebase(_config);
        }
    }

    private int After(int token)
    {
        var bytes = _vocabulary.Bytes(token);
        if (bytes.IsEmpty) return GrammarRunner.Dead;
        var config = _config;
        foreach (var b in bytes)
        {
            config = _runner.Next(config, b);
            if (config == GrammarRunner.Dead) break;
        }
        return config;
    }

    private CachedMask CachedMaskOf(int config)
    {
        if (_masks.TryGetValue(config, out var cached)) return cached;
        if (_masks.Count == MaxCachedMasks) ForgetMasks();
        var bits = _spareMasks.Count > 0 ? _spareMasks.Pop() : new ulong[_allowed.Length];
        cached = new CachedMask(bits, Walk(config, Grammar.Infinite, bits));
        _masks.Add(config, cached);
        return cached;
    }

    private void ForgetMasks()
    {
        foreach (var cached in _masks.Values) _spareMasks.Push(cached.Bits);
        _masks.Clear();
    }

    /// <summary>
    /// Marks the tokens the grammar takes from <paramref name="config"/> whose completion then fits in
    /// <paramref name="left"/> tokens, walking the trie and skipping every subtree whose prefix is refused. Returns the
    /// largest completion cost among the tokens marked.
    /// </summary>
    private int Walk(int config, int left, Span<ulong> bits)
    {
        bits.Clear();
        var trie = _trie;
        var nodeByte = trie.NodeByte;
        var nodeDepth = trie.NodeDepth;
        var subtreeEnd = trie.SubtreeEnd;
        var tokenStart = trie.TokenStart;
        var tokens = trie.Tokens;
        var atDepth = _configAtDepth;
        atDepth[0] = config;
        var maxCost = 0;
        for (var node = 0; node < nodeByte.Length;)
        {
            var depth = nodeDepth[node];
            var next = _runner.Next(atDepth[depth - 1], nodeByte[node]);
            if (next == GrammarRunner.Dead)
            {
                node = subtreeEnd[node];
                continue;
            }
            atDepth[depth] = next;
            var first = tokenStart[node];
            var last = tokenStart[node + 1];
            if (first < last)
            {
                var cost = _runner.Cost(next);
                if (cost <= left)
                {
                    maxCost = Math.Max(maxCost, cost);
                    for (var k = first; k < last; k++) bits[tokens[k] >> 6] |= 1UL << (tokens[k] & 63);
                }
            }
            node++;
        }
        return maxCost;
    }

    private static void Apply(ReadOnlySpan<ulong> allowed, Span<float> logits)
    {
        for (var start = 0; start < logits.Length; start += 64)
        {
            var word = start / 64 < allowed.Length ? allowed[start / 64] : 0;
            var count = Math.Min(64, logits.Length - start);
            var refused = ~word & (count == 64 ? ulong.MaxValue : (1UL << count) - 1);
            if (refused == 0) continue;
            if (word == 0)
            {
                logits.Slice(start, count).Fill(float.NegativeInfinity);
                continue;
            }
            for (; refused != 0; refused &= refused - 1) logits[start + BitOperations.TrailingZeroCount(refused)] = float.NegativeInfinity;
        }
    }

    private sealed record CachedMask(ulong[] Bits, int MaxCost);
}
