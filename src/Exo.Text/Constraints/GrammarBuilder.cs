using System.Text;

namespace Exo.Text.Constraints;

/// <summary>One alternative of a rule being built: terminals and rule references in order.</summary>
internal sealed class Sequence(GrammarBuilder builder)
{
    internal List<int> Elements { get; } = [];

    public Sequence Bytes(ByteSet set)
    {
        Elements.Add(builder.Terminal(set));
        return this;
    }

    public Sequence Text(string text) => Utf8(Encoding.UTF8.GetBytes(text));

    public Sequence Utf8(ReadOnlySpan<byte> text)
    {
        foreach (var b in text) Bytes(ByteSet.Of(b));
        return this;
    }

    public Sequence Ref(int rule)
    {
        Elements.Add(~rule);
        return this;
    }
}

/// <summary>
/// Collects rules and checks the grammar when built: bounded in size, free of left recursion (which would loop
/// without reading a byte), and with a finite text for the start rule. Rules carry the schema pointer they come from,
/// for error messages.
/// </summary>
internal sealed class GrammarBuilder
{
    public const int MaxRules = 1 << 17;
    public const int MaxElements = 1 << 20;

    private readonly List<List<int[]>> _rules = [];
    private readonly List<string> _names = [];
    private readonly Dictionary<ByteSet, int> _classIds = [];
    private readonly List<ByteSet> _classes = [];
    private int _elements;

    public Sequence Seq() => new(this);

    /// <summary>A new rule without alternatives yet; <paramref name="pointer"/> names it in errors.</summary>
    public int Rule(string pointer)
    {
        if (_rules.Count >= MaxRules) throw GrammarException.At(pointer, $"the schema needs more than {MaxRules} grammar rules");
        _rules.Add([]);
        _names.Add(pointer);
        return _rules.Count - 1;
    }

    /// <summary>A new rule with the given alternatives.</summary>
    public int Rule(string pointer, params ReadOnlySpan<Sequence> alternatives)
    {
        var rule = Rule(pointer);
        foreach (var alternative in alternatives) Add(rule, alternative);
        return rule;
    }

    public void Add(int rule, Sequence alternative)
    {
        _elements += alternative.Elements.Count + 1;
        if (_elements > MaxElements) throw GrammarException.At(_names[rule], $"the schema needs more than {MaxElements} grammar elements");
        _rules[rule].Add([.. alternative.Elements]);
    }

    public int Terminal(ByteSet set)
    {
        if (set.IsEmpty) throw new ArgumentException("a terminal must match some byte", nameof(set));
        if (!_classIds.TryGetValue(set, out var id))
        {
            id = _classes.Count;
            _classIds.Add(set, id);
            _classes.Add(set);
        }
        return id;
    }

    public Grammar Build(int start)
    {
        var code = new List<int>(_elements);
        var altStarts = new List<int>();
        var altRule = new List<int>();
        var ruleAlts = new int[_rules.Count + 1];
        for (var r = 0; r < _rules.Count; r++)
        {
            ruleAlts[r] = altStarts.Count;
            foreach (var alternative in _rules[r])
            {
                altStarts.Add(code.Count);
                altRule.Add(r);
                code.AddRange(alternative);
                code.Add(Grammar.End);
            }
        }
        ruleAlts[_rules.Count] = altStarts.Count;
        var codeArray = code.ToArray();
        var ruleCost = RuleCosts(codeArray, altStarts, altRule);
        CheckLeftRecursion(codeArray, [.. altStarts], ruleAlts, ruleCost);
        if (ruleCost[start] >= Grammar.Infinite) throw GrammarException.At(_names[start], "no finite JSON text satisfies the schema");
        var positionCost = new int[codeArray.Length];
        for (var p = codeArray.Length - 1; p >= 0; p--)
        {
            var e = codeArray[p];
            positionCost[p] = e == Grammar.End ? 0 : Grammar.Saturate((long)(e >= 0 ? 1 : ruleCost[~e]) + positionCost[p + 1]);
        }
        return new Grammar(codeArray, [.. altStarts], ruleAlts, [.. _classes], positionCost, start);
    }

    /// <summary>
    /// The fewest bytes each rule derives (Knuth's generalisation of Dijkstra's algorithm: a rule's cost is final
    /// when it is the cheapest left in the queue); <see cref="Grammar.Infinite"/> for rules with no finite text.
    /// </summary>
    private int[] RuleCosts(int[] code, List<int> altStarts, List<int> altRule)
    {
        var cost = new int[_rules.Count];
        Array.Fill(cost, Grammar.Infinite);
        var done = new bool[_rules.Count];
        var pending = new int[altStarts.Count];
        var partial = new long[altStarts.Count];
        var uses = new List<int>?[_rules.Count];
        var queue = new PriorityQueue<int, long>();
        for (var a = 0; a < altStarts.Count; a++)
        {
            for (var p = altStarts[a]; code[p] != Grammar.End; p++)
            {
                if (code[p] >= 0)
                {
                    partial[a]++;
                    continue;
                }
                pending[a]++;
                (uses[~code[p]] ??= []).Add(a);
            }
            if (pending[a] == 0) queue.Enqueue(altRule[a], partial[a]);
        }
        while (queue.TryDequeue(out var rule, out var ruleCost))
        {
            if (done[rule]) continue;
            done[rule] = true;
            cost[rule] = Grammar.Saturate(ruleCost);
            foreach (var a in uses[rule] ?? [])
            {
                partial[a] = Math.Min(partial[a] + cost[rule], Grammar.Infinite);
                if (--pending[a] == 0) queue.Enqueue(altRule[a], partial[a]);
            }
        }
        return cost;
    }

    /// <summary>Rejects a rule that can reach itself without reading a byte: expanding it would never end.</summary>
    private void CheckLeftRecursion(int[] code, int[] altStarts, int[] ruleAlts, int[] ruleCost)
    {
        var state = new byte[_rules.Count];    // 0 unvisited, 1 on the path, 2 finished
        var stack = new Stack<(int Rule, IEnumerator<int> Next)>();
        for (var root = 0; root < _rules.Count; root++)
        {
            if (state[root] != 0) continue;
            state[root] = 1;
            stack.Push((root, LeftCalls(code, altStarts, ruleAlts, ruleCost, root).GetEnumerator()));
            while (stack.Count > 0)
            {
                var (rule, next) = stack.Peek();
                if (!next.MoveNext())
                {
                    state[rule] = 2;
                    stack.Pop();
                    continue;
                }
                var callee = next.Current;
                if (state[callee] == 1) throw GrammarException.At(_names[callee], "the schema refers to itself without any JSON text in between");
                if (state[callee] == 0)
                {
                    state[callee] = 1;
                    stack.Push((callee, LeftCalls(code, altStarts, ruleAlts, ruleCost, callee).GetEnumerator()));
                }
            }
        }
    }

    /// <summary>The rules a rule may call before it has read a byte: those after only empty-deriving references.</summary>
    private static IEnumerable<int> LeftCalls(int[] code, int[] altStarts, int[] ruleAlts, int[] ruleCost, int rule)
    {
        for (var a = ruleAlts[rule]; a < ruleAlts[rule + 1]; a++)
        {
            for (var p = altStarts[a]; code[p] != Grammar.End && code[p] < 0; p++)
            {
                yield return ~code[p];
                if (ruleCost[~code[p]] != 0) break;
            }
        }
    }
}
