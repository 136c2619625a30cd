using Exo.Inference;

namespace Exo.Planner.Planning;

/// <summary>
/// Splits a model's layers into one ring, never giving a node more than fits beside its embeddings or head. When every
/// node has measured its speed the split balances time: it minimises the slowest stage's time per token, which sets a
/// busy ring's throughput, with every node that has memory for a layer running at least one (see <see cref="SpeedSplit"/>).
/// When any node has not (bandwidth 0), the memory-weighted strategy: nodes ordered by available memory (largest first,
/// then node id), each given a share of the layers proportional to its memory. The result depends only on the set of
/// nodes and the profile, never on their order or on the clock.
/// </summary>
public static class RingPlanner
{
    // More than any machine has (1 PiB); larger reports are corrupt and would overflow the sums below.
    private const long MaxNodeMemoryBytes = 1L << 50;

    // Measured speeds outside these ranges (a kilobyte per second, or beyond any memory or accelerator: a petabyte
    // per second, an exaflop) are corrupt reports, which would make predicted times meaningless.
    private const double MinSpeed = 1e3, MaxBandwidth = 1e15, MaxFlops = 1e18;

    public static Placement Plan(IEnumerable<NodeCapacity> nodes, ModelProfile profile, long version)
    {
        var result = TryPlan(nodes, profile, version);
        return result.Placement ?? throw new PlacementException(result.Error!);
    }

    public static PlacementResult TryPlan(IEnumerable<NodeCapacity> nodes, ModelProfile profile, long version)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(profile);
        profile.Validate();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(version);
        var ring = Canonical(nodes);

        var needs = $"model '{profile.ModelId}' needs {ByteSize.Gigabytes(profile.TotalBytes)}";
        if (ring.Count == 0) return PlacementResult.NoFit($"{needs}, but the cluster has no nodes");
        var free = ring.Sum(n => n.AvailableMemoryBytes);
        var noFit = $"{needs}, the cluster has {ByteSize.Gigabytes(free)} free";

        if (Split(ring, profile) is { } stages) return PlacementResult.Fit(new Placement(profile.ModelId, version, stages));

        return PlacementResult.NoFit(free >= profile.TotalBytes
            ? $"{noFit}, but not in pieces that fit: each layer needs {ByteSize.Gigabytes(profile.LayerCostBytes)} with its KV cache, "
              + $"the first node also holds the embeddings ({ByteSize.Gigabytes(profile.EmbeddingBytes)}) and the last the head "
              + $"({ByteSize.Gigabytes(profile.FixedBytes(first: false, last: true))})"
            : noFit);
    }

    /// <summary>The ring's stages over nodes in <see cref="Canonical"/> order (some may be left out), or null when they cannot hold the model.</summary>
    internal static PlacementStage[]? Split(List<NodeCapacity> ring, ModelProfile profile) =>
        (ring.All(n => n.Measured) ? SpeedSplit.Plan(ring, profile) : SplitByMemory(ring, profile)) is { } found ? Stages(found.Ring, found.Counts, profile) : null;

    /// <summary>Layers in proportion to memory over the nodes in canonical order, or null when they cannot hold the model.</summary>
    private static (List<NodeCapacity> Ring, int[] Counts)? SplitByMemory(List<NodeCapacity> ring, ModelProfile profile)
    {
        // Nodes that cannot hold a layer, or whose share rounds to none, leave the ring; that can move the head to
        // another node, so capacities are recomputed until the ring is stable. The ring shrinks each round.
        while (ring.Count > 0)
        {
            var capacities = Capacities(ring, profile);
            if (capacities.Any(c => c < 1))
            {
                ring = ring.Where((_, i) => capacities[i] >= 1).ToList();
                continue;
            }

            if (capacities.Sum(c => (long)c) < profile.LayerCount) break;

            var weights = ring.Select(n => n.AvailableMemoryBytes).ToArray();
            var counts = Split(profile.LayerCount, weights, capacities);
            if (counts.Any(c => c == 0))
            {
                ring = ring.Where((_, i) => counts[i] > 0).ToList();
                continue;
            }

            return (ring, counts);
        }

        return null;
    }

    /// <summary>The nodes checked and ordered by available memory (largest first), then id: the order every split starts from.</summary>
    internal static List<NodeCapacity> Canonical(IEnumerable<NodeCapacity> nodes)
    {
        var list = nodes.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in list)
        {
            if (node is null || string.IsNullOrWhiteSpace(node.NodeId)) throw new ArgumentException("every node needs a non-empty id", nameof(nodes));
            if (node.AvailableMemoryBytes is < 0 or > MaxNodeMemoryBytes)
                throw new ArgumentException($"node '{node.NodeId}' reports implausible available memory ({node.AvailableMemoryBytes} bytes)", nameof(nodes));
            if (node.BandwidthBytesPerSecond is not 0 and not (>= MinSpeed and <= MaxBandwidth))
                throw new ArgumentException($"node '{node.NodeId}' reports implausible bandwidth ({node.BandwidthBytesPerSecond} bytes/s)", nameof(nodes));
            if (node.Flops is not 0 and not (>= MinSpeed and <= MaxFlops))
                throw new ArgumentException($"node '{node.NodeId}' reports implausible compute ({node.Flops} FLOPS)", nameof(nodes));
            if (!seen.Add(node.NodeId)) throw new ArgumentException($"node '{node.NodeId}' is listed twice", nameof(nodes));
        }

        return list.OrderByDescending(n => n.AvailableMemoryBytes).ThenBy(n => n.NodeId, StringComparer.Ordinal).ToList();
    }

    /// <summary>Whole layers each node can hold in its ring position (negative when not even its fixed part fits).</summary>
    private static int[] Capacities(List<NodeCapacity> ring, ModelProfile profile)
    {
        var result = new int[ring.Count];
        for (var i = 0; i < ring.Count; i++)
        {
            var room = ring[i].AvailableMemoryBytes - profile.FixedBytes(first: i == 0, last: i == ring.Count - 1);
            result[i] = room < 0 ? -1 : (int)Math.Min(room / profile.LayerCostBytes, profile.LayerCount);
        }

        return result;
    }

    /// <summary>
    /// Splits <paramref name="total"/> layers in proportion to the weights, each node getting at most its capacity: nodes whose share exceeds their capacity are held at it and
    /// the rest is split again among the others. The capacities must add up to at least the total and the weights be positive.
    /// </summary>
    private static int[] Split(int total, long[] weights, int[] capacities)
    {
        var counts = new int[weights.Length];
        var held = new bool[weights.Length];
        while (true)
        {
            var open = Enumerable.Range(0, weights.Length).Where(i => !held[i]).ToArray();
            var remaining = total - Enumerable.Range(0, weights.Length).Where(i => held[i]).Sum(i => counts[i]);
            var shares = LargestRemainder(remaining, open.Select(i => weights[i]).ToArray());
            var overflowed = false;
            for (var k = 0; k < open.Length; k++)
            {
                var i = open[k];
                counts[i] = shares[k];
                if (counts[i] <= capacities[i]) continue;
                counts[i] = capacities[i];
                held[i] = true;
                overflowed = true;
            }

            if (!overflowed) return counts;
        }
    }

    /// <summary>
    /// Apportions <paramref name="total"/> by the largest-remainder method in exact integer arithmetic: everyone gets
    /// the floor of their quota, and the leftover units go to the largest remainders, earlier ring positions first on ties.
    /// </summary>
    private static int[] LargestRemainder(int total, long[] weights)
    {
        var shares = new int[weights.Length];
        if (total <= 0 || weights.Length == 0) return shares;
        Int128 sum = 0;
        foreach (var w in weights) sum += w;
        var remainders = new Int128[weights.Length];
        var given = 0;
        for (var i = 0; i < weights.Length; i++)
        {
            var quota = (Int128)total * weights[i];
            shares[i] = (int)(quota / sum);
            remainders[i] = quota % sum;
            given += shares[i];
        }

        foreach (var i in Enumerable.Range(0, weights.Length).OrderByDescending(i => remainders[i]).ThenBy(i => i).Take(total - given))
            shares[i]++;
        return shares;
    }

    private static PlacementStage[] Stages(List<NodeCapacity> ring, int[] counts, ModelProfile profile)
    {
        var stages = new PlacementStage[ring.Count];
        var start = 0;
        for (var i = 0; i < ring.Count; i++)
        {
            var bytes = profile.FixedBytes(first: i == 0, last: i == ring.Count - 1) + counts[i] * profile.LayerCostBytes;
            stages[i] = new PlacementStage(ring[i].NodeId, new LayerRange(start, start + counts[i]), bytes);
            start += counts[i];
        }

        return stages;
    }
}
