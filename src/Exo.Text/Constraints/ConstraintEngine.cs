using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Exo.Text.Constraints;

/// <summary>
/// What one grammar and one vocabulary compute, whichever request asks: the lazily built automaton and each state's
/// mask. Nothing in it belongs to a request, so a finished request hands it back to the grammar and the next one
/// starts warm. Used by one request at a time.
/// </summary>
internal sealed class ConstraintEngine
{
    // Bounds on what an engine remembers: automaton configurations (1 KB of transitions each), parse-stack nodes
    // (12 bytes and a dictionary entry each) and cached masks.
    private const int MaxConfigs = 8192;
    private const int MaxNodes = 1 << 20;
    private const int MaxCachedMasks = 256;

    private readonly GrammarRunner _runner;
    private readonly TokenTrie _trie;
    private readonly int[] _configAtDepth;      // the trie walk's configuration after each depth of bytes
    private readonly Dictionary<int, CachedMask> _masks = [];
    private readonly Stack<ulong[]> _spareMasks = new();

    public ConstraintEngine(Grammar grammar, TokenVocabulary vocabulary, int maskWords)
    {
        _runner = new GrammarRunner(grammar);
        Start = _runner.Start();
        Vocabulary = vocabulary;
        _trie = vocabulary.Trie;
        _configAtDepth = new int[_trie.MaxDepth + 1];
        MaskWords = maskWords;
    }

    public TokenVocabulary Vocabulary { get; }
    public GrammarRunner Runner => _runner;
    /// <summary>The configuration before any byte (its id changes when the engine forgets).</summary>
    public int Start { get; private set; }
    public int MaskWords { get; }

    /// <summary>The configuration after token <paramref name="token"/>'s bytes, or <see cref="GrammarRunner.Dead"/>.</summary>
    public int After(int config, int token)
    {
        var bytes = Vocabulary.Bytes(token);
        if (bytes.IsEmpty) return GrammarRunner.Dead;
        foreach (var b in bytes)
        {
            config = _runner.Next(config, b);
            if (config == GrammarRunner.Dead) break;
        }
        return config;
    }

    /// <summary>Where memory has grown past its bound: forgets all but <paramref name="config"/>, whose new id it returns.</summary>
    public int Trim(int config)
    {
        if (_runner.ConfigCount <= MaxConfigs && _runner.NodeCount <= MaxNodes) return config;
        ForgetMasks();
        config = _runner.Rebase(config);
        Start = _runner.Start();
        return config;
    }

    /// <summary>Writes into <paramref name="allowed"/> the tokens allowed from <paramref name="config"/> with <paramref name="left"/> tokens to spare after them.</summary>
    public void Allowed(int config, int left, Span<ulong> allowed)
    {
        var cached = CachedMaskOf(config);
        if (cached.MaxCost <= left) cached.Bits.CopyTo(allowed);
        else Walk(config, left, allowed);
    }

    private CachedMask CachedMaskOf(int config)
    {
        if (_masks.TryGetValue(config, out var cached)) return cached;
        if (_masks.Count == MaxCachedMasks) ForgetMasks();
        var bits = _spareMasks.Count > 0 ? _spareMasks.Pop() : new ulong[MaskWords];
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // optimized from its first call: it loops over the whole trie
    private int Walk(int config, int left, Span<ulong> bits)
    {
        bits.Clear();
        var runner = _runner;
        // The hot loop, one step per trie node: the memo is read in place, without bounds checks (every index comes
        // from the trie or the automaton, in range by construction); only a miss goes through the runner.
        var transitions = runner.Transitions;
        var configs = runner.Configurations;
        ref var node0 = ref MemoryMarshal.GetArrayDataReference(_trie.Nodes);
        ref var token0 = ref MemoryMarshal.GetArrayDataReference(_trie.Tokens);
        ref var atDepth = ref MemoryMarshal.GetArrayDataReference(_configAtDepth);
        atDepth = config;
        var maxCost = 0;
        var count = _trie.NodeCount;
        for (var node = 0; node < count;)
        {
            ref readonly var n = ref Unsafe.Add(ref node0, node);
            var from = Unsafe.Add(ref atDepth, n.Depth - 1);
            var next = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(transitions), (from << 8) | n.Byte) - 2;
            if (next == -2)
            {
                next = runner.Next(from, n.Byte);
                transitions = runner.Transitions;
                configs = runner.Configurations;
            }
            if (next == GrammarRunner.Dead)
            {
                node = n.SubtreeEnd;
                continue;
            }
            Unsafe.Add(ref atDepth, n.Depth) = next;
            var last = Unsafe.Add(ref node0, node + 1).TokenStart;
            if (n.TokenStart < last)
            {
                var cost = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(configs), next).Cost;
                if (cost <= left)
                {
                    maxCost = Math.Max(maxCost, cost);
                    for (var k = n.TokenStart; k < last; k++)
                    {
                        var token = Unsafe.Add(ref token0, k);
                        bits[token >> 6] |= 1UL << (token & 63);
                    }
                }
            }
            node++;
        }
        return maxCost;
    }

    /// <summary>Sets to negative infinity every logit whose bit is clear; words past the mask count as clear.</summary>
    public static void Apply(ReadOnlySpan<ulong> allowed, Span<float> logits)
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

    private readonly record struct CachedMask(ulong[] Bits, int MaxCost);
}
