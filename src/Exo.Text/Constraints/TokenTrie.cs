namespace Exo.Text.Constraints;

/// <summary>
/// The tokens' byte strings as a trie laid out in preorder: a node follows its parent, and its subtree ends at
/// <see cref="TrieNode.SubtreeEnd"/>, so a walk that rejects a prefix skips every token under it in one step.
/// </summary>
internal sealed class TokenTrie
{
    public TokenTrie(IReadOnlyList<byte[]?> tokens)
    {
        var order = Enumerable.Range(0, tokens.Count).Where(t => tokens[t] is { Length: > 0 }).ToArray();
        Array.Sort(order, (a, b) => tokens[a].AsSpan().SequenceCompareTo(tokens[b]) is var c && c != 0 ? c : a.CompareTo(b));

        var nodes = new List<TrieNode>();
        var open = new List<int>();     // the open node at each depth - 1
        ReadOnlySpan<byte> previous = [];
        for (var i = 0; i < order.Length; i++)
        {
            var bytes = tokens[order[i]].AsSpan();
            var common = bytes.CommonPrefixLength(previous);
            for (; open.Count > common; open.RemoveAt(open.Count - 1)) nodes[open[^1]] = nodes[open[^1]] with { SubtreeEnd = nodes.Count };
            for (var depth = common + 1; depth <= bytes.Length; depth++)
            {
                open.Add(nodes.Count);
                nodes.Add(new TrieNode(bytes[depth - 1], depth, 0, i));
            }
            previous = bytes;
        }
        foreach (var node in open) nodes[node] = nodes[node] with { SubtreeEnd = nodes.Count };
        NodeCount = nodes.Count;
        MaxDepth = nodes.Count == 0 ? 0 : nodes.Max(n => n.Depth);
        nodes.Add(new TrieNode(0, 0, nodes.Count, order.Length));
        Nodes = [.. nodes];
        Tokens = order;
    }

    public int NodeCount { get; }

    /// <summary>The nodes in preorder, then a sentinel whose <see cref="TrieNode.TokenStart"/> ends the last node's tokens.</summary>
    public TrieNode[] Nodes { get; }

    /// <summary>Token ids in byte order: node i's tokens are Tokens[Nodes[i].TokenStart .. Nodes[i + 1].TokenStart).</summary>
    public int[] Tokens { get; }

    public int MaxDepth { get; }
}

/// <summary>A trie node: its byte, its depth (1 under the root), where its subtree ends, where its tokens start.</summary>
internal readonly record struct TrieNode(byte Byte, int Depth, int SubtreeEnd, int TokenStart);
