namespace Exo.Text.Constraints;

/// <summary>
/// Runs a <see cref="Grammar"/> over bytes as a deterministic automaton built lazily. A parse stack is a chain of
/// interned nodes (a position in the code and the node to return to); a configuration is the set of stacks alive
/// after the bytes read so far, each with a terminal on top, interned so that equal sets share one id. Each
/// configuration's 256 transitions are computed on first use and remembered, so stepping a byte is usually one
/// array read. Nothing in it belongs to a request; it serves one request at a time and is not thread-safe.
/// </summary>
internal sealed class GrammarRunner
{
    public const int Dead = -1;
    private const int Root = -1;
    private const int InitialConfigs = 64;
    /// <summary>The most parse stacks a configuration keeps: an ambiguous schema could otherwise double them per byte.</summary>
    private const int MaxStacks = 1024;

    private readonly Grammar _grammar;
    private readonly Dictionary<long, int> _nodeIds = [];
    private StackNode[] _nodes = new StackNode[256];
    private int[] _nodeMark = new int[256];     // the step that last expanded each node
    private int _nodeCount;

    private Configuration[] _configs = new Configuration[InitialConfigs];
    private int[] _leafPool = new int[1024];
    private int _leafPoolCount;
    private int[] _buckets = new int[256];     // config id + 1, 0 empty; open addressing
    private int[] _transitions = new int[InitialConfigs * 256];   // [config * 256 + byte]: next + 2, 0 unknown

    private int[] _leaves = new int[64];
    private int _leafCount;
    private bool _accepting;
    private int[] _work = new int[64];
    private int _workCount;
    private int _stamp;

    public GrammarRunner(Grammar grammar)
    {
        _grammar = grammar;
    }

    public int ConfigCount { get; private set; }

    /// <summary>Parse-stack nodes interned so far.</summary>
    public int NodeCount => _nodeCount;

    /// <summary>The configuration before any byte.</summary>
    public int Start()
    {
        BeginStep();
        var g = _grammar;
        for (var a = g.RuleAlts[g.Start]; a < g.RuleAlts[g.Start + 1]; a++)
        {
            Continue(g.AltStarts[a], Root);
        }
        Drain();
        return Intern();
    }

    /// <summary>The configuration after <paramref name="value"/>, or <see cref="Dead"/> where the grammar refuses it.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public int Next(int config, byte value)
    {
        var slot = (config << 8) | value;
        var next = _transitions[slot];
        if (next == 0)
        {
            // Advance may grow the table: index it afresh.
            next = Advance(config, value) + 2;
            _transitions[slot] = next;
        }
        return next - 2;
    }

    /// <summary>
    /// The memo behind <see cref="Next"/>, [config * 256 + byte] = next + 2 (0 unknown, 1 dead), for loops that read it
    /// directly; it is replaced whenever <see cref="Next"/> grows it.
    /// </summary>
    public int[] Transitions => _transitions;

    /// <summary>The configurations by id; replaced whenever <see cref="Next"/> grows it.</summary>
    public Configuration[] Configurations => _configs;

    /// <summary>Whether the bytes read so far are a whole sentence of the grammar.</summary>
    public bool Accepts(int config) => _configs[config].Accepts;

    /// <summary>Whether some byte may still follow.</summary>
    public bool CanContinue(int config) => _configs[config].Length > 0;

    /// <summary>The fewest bytes that complete the sentence from this configuration.</summary>
    public int Cost(int config) => _configs[config].Cost;

    /// <summary>
    /// Forgets every configuration but <paramref name="config"/> (memory stays bounded over a long generation)
    /// and returns its new id.
    /// </summary>
    public int Rebase(int config)
    {
        var stacks = new List<int[]>();
        foreach (var leaf in Leaves(config))
        {
            var chain = new List<int>();
            for (var n = leaf; n != Root; n = _nodes[n].Parent) chain.Add(_nodes[n].Position);
            chain.Reverse();
            stacks.Add([.. chain]);
        }
        var accepts = _configs[config].Accepts;
        _nodeIds.Clear();
        _nodeCount = 0;
        ConfigCount = 0;
        _leafPoolCount = 0;
        Array.Clear(_buckets);
        Array.Clear(_transitions);
        BeginStep();
        foreach (var chain in stacks)
        {
            var node = Root;
            foreach (var position in chain) node = NodeId(position, node);
            AddLeaf(node);
        }
        _accepting = accepts;
        return Intern();
    }

    private int Advance(int config, byte value)
    {
        BeginStep();
        var g = _grammar;
        foreach (var leaf in Leaves(config))
        {
            var node = _nodes[leaf];
            if (g.Matches(g.Code[node.Position], value)) Continue(node.Position + 1, node.Parent);
        }
        Drain();
        return Intern();
    }

    private void BeginStep()
    {
        _leafCount = 0;
        _workCount = 0;
        _accepting = false;
        _stamp++;
    }

    /// <summary>Goes on at <paramref name="position"/> of an alternative: at its end, back to the caller.</summary>
    private void Continue(int position, int parent)
    {
        if (_grammar.Code[position] != Grammar.End) Push(NodeId(position, parent));
        else if (parent == Root) _accepting = true;
        else Push(parent);
    }

    /// <summary>Expands the queued nodes down to terminals: a rule reference becomes one stack per alternative.</summary>
    private void Drain()
    {
        var g = _grammar;
        while (_workCount > 0)
        {
            var node = _work[--_workCount];
            if (_nodeMark[node] == _stamp || _nodes[node].Cost >= Grammar.Infinite) continue;
            _nodeMark[node] = _stamp;
            var position = _nodes[node].Position;
            var element = g.Code[position];
            if (element >= 0)
            {
                AddLeaf(node);
                continue;
            }
            // A call in tail position returns straight to this node's caller, so right recursion keeps stacks flat.
            var parent = _nodes[node].Parent;
            var caller = g.Code[position + 1] == Grammar.End ? parent : NodeId(position + 1, parent);
            var rule = ~element;
            for (var a = g.RuleAlts[rule]; a < g.RuleAlts[rule + 1]; a++)
            {
                var first = g.AltStarts[a];
                if (g.Code[first] != Grammar.End) Push(NodeId(first, caller));
                else if (caller == Root) _accepting = true;
                else Push(caller);
            }
        }
    }

    private void Push(int node)
    {
        if (_workCount == _work.Length) Array.Resize(ref _work, _work.Length * 2);
        _work[_workCount++] = node;
    }

    private void AddLeaf(int node)
    {
        if (_leafCount == _leaves.Length) Array.Resize(ref _leaves, _leaves.Length * 2);
        _leaves[_leafCount++] = node;
    }

    private int NodeId(int position, int parent)
    {
        var key = ((long)position << 32) | (uint)(parent + 1);
        if (_nodeIds.TryGetValue(key, out var id)) return id;
        id = _nodeCount++;
        if (id == _nodes.Length)
        {
            Array.Resize(ref _nodes, id * 2);
            Array.Resize(ref _nodeMark, id * 2);
        }
        _nodes[id] = new StackNode(position, parent, Grammar.Saturate((long)_grammar.PositionCost[position] + (parent == Root ? 0 : _nodes[parent].Cost)));
        _nodeMark[id] = 0;
        _nodeIds.Add(key, id);
        return id;
    }

    /// <summary>The id of the configuration in the scratch leaves, added if new.</summary>
    private int Intern()
    {
        if (_leafCount == 0 && !_accepting) return Dead;
        var leaves = _leaves.AsSpan(0, _leafCount);
        if (leaves.Length > MaxStacks)
        {
            // Keep the cheapest stacks: each is a real parse, so what follows stays valid and can still be finished.
            leaves.Sort((a, b) => _nodes[a].Cost != _nodes[b].Cost ? _nodes[a].Cost.CompareTo(_nodes[b].Cost) : a.CompareTo(b));
            leaves = leaves[..MaxStacks];
        }
        leaves.Sort();
        var mask = _buckets.Length - 1;
        for (var slot = Hash(_accepting, leaves) & mask; ; slot = (slot + 1) & mask)
        {
            var entry = _buckets[slot] - 1;
            if (entry < 0)
            {
                var id = Add(leaves);
                _buckets[slot] = id + 1;
                if (ConfigCount * 2 > _buckets.Length) Rehash();
                return id;
            }
            if (_configs[entry].Accepts == _accepting && Leaves(entry).SequenceEqual(leaves)) return entry;
        }
    }

    private int Add(ReadOnlySpan<int> leaves)
    {
        var id = ConfigCount++;
        if (id == _configs.Length) Array.Resize(ref _configs, id * 2);
        if (id * 256 == _transitions.Length) Array.Resize(ref _transitions, _transitions.Length * 2);
        if (_leafPoolCount + leaves.Length > _leafPool.Length) Array.Resize(ref _leafPool, Math.Max(_leafPool.Length * 2, _leafPoolCount + leaves.Length));
        leaves.CopyTo(_leafPool.AsSpan(_leafPoolCount));
        var cost = _accepting ? 0 : Grammar.Infinite;
        foreach (var leaf in leaves) cost = Math.Min(cost, _nodes[leaf].Cost);
        _configs[id] = new Configuration(_leafPoolCount, leaves.Length, cost, _accepting);
        _leafPoolCount += leaves.Length;
        return id;
    }

    private void Rehash()
    {
        _buckets = new int[_buckets.Length * 2];
        var mask = _buckets.Length - 1;
        for (var id = 0; id < ConfigCount; id++)
        {
            var slot = Hash(_configs[id].Accepts, Leaves(id)) & mask;
            while (_buckets[slot] != 0) slot = (slot + 1) & mask;
            _buckets[slot] = id + 1;
        }
    }

    private ReadOnlySpan<int> Leaves(int config) => _leafPool.AsSpan(_configs[config].Start, _configs[config].Length);

    private static int Hash(bool accepts, ReadOnlySpan<int> leaves)
    {
        var hash = accepts ? 1 : 0;
        foreach (var leaf in leaves) hash = hash * -1640531535 + leaf;
        return hash;
    }
}

/// <summary>A parse stack's top: a position in the grammar's code, the node to return to, and the fewest bytes to finish.</summary>
internal readonly record struct StackNode(int Position, int Parent, int Cost);

/// <summary>A configuration: its stacks' top nodes (a run of the leaf pool), its cost, and whether the text so far is whole.</summary>
internal readonly record struct Configuration(int Start, int Length, int Cost, bool Accepts);
