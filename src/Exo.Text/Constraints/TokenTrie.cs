namespace Exo.Text.Constraints;

/// <summary>
/// The tokens' byte strings as a trie laid out in preorder: node i follows its parent, and its subtree ends at
/// <see cref="SubtreeEnd"/>[i], so a walk that rejects a prefix skips every token under it in one step.
/// </summary>
internal sealed class TokenTrie
{
    public TokenTrie(IReadOnlyList<byte[]?> tokens)
    {
        var order = Enumerable.Range(0, tokens.Count).Where(t => tokens[t] is { Length: > 0 }).ToArray();
        Array.Sort(order, (a, b) => tokens[a].AsSpan().SequenceCompareTo(tokens[b]) is var c && c != 0 ? c : a.CompareTo(b));

        var nodeByte = new List<byte>();
        var nodeDepth = new List<int>();
        var tokenStart = new List<int>();
        var subtreeEnd = new List<int>();
        var open = new List<int>();     // the open node at each depth - 1
        ReadOnlySpan<byte> previous = [];
        for (var i = 0; i < order.Length; i++)
        {
            var bytes = tokens[order[i]].AsSpan();
            var common = bytes.CommonPrefixLength(previous);
            for (; open.Count > common; open.RemoveAt(open.Count - 1)) subtreeEnd[open[^1]] = nodeByte.Count;
            for (var depth = common + 1; depth <= bytes.Length; depth++)
            {
                open.Add(nodeByte.Count);
                nodeByte.Add(bytes[depth - 1]);
                nodeDepth.Add(depth);
                tokenStart.Add(i);
                subtreeEnd.Add(0);
            }
            previous = bytes;
        }
        foreach (var node in open) subtreeEnd[node] = nodeByte.Count;
        tokenStart.Add(order.Length);

        NodeByte = [.. nodeByte];
        NodeDepth = [.. nodeDepth];
        SubtreeEnd = [.. subtreeEnd];
        TokenStart = [.. tokenStart];
        Tokens = order;
        MaxDepth = nodeDepth.Count == 0 ? 0 : nodeDepth.Max();
    }

    public int NodeCount => NodeByte.Length;
    public byte[] NodeByte { get; }
    /// <summary>Bytes from the root to the node, its own included (1 for a child of the root).</summary>
    public int[] NodeDepth { get; }
    public int[] SubtreeEnd { get; }
    /// <summary>The tokens whose bytes end at node i are <see cref="Tokens"/>[TokenStart[i] .. TokenStart[i + 1]).</summary>
    public int[] TokenStart { get; }
    public int[] Tokens { get; }
    public int MaxDepth { get; }
}
