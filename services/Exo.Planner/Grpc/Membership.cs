using Exo.Contracts.V1;

namespace Exo.Planner.Grpc;

/// <summary>
/// The registry's members as the planner plans with them. A change is taken only when it can matter to a placement:
/// a node joining or leaving, a new endpoint, other models on disk, or available memory, bandwidth or FLOPS moving by
/// <see cref="Tolerance"/> or more since the value last taken. Memory moves while a worker loads its layers;
/// re-planning on every such move would shift layers, which moves memory again, and the ring would oscillate. Speed is
/// measured again each time a worker starts, and a restart should not shift layers for a few percent of noise.
/// </summary>
public sealed class Membership
{
    public const double Tolerance = 0.10;

    private readonly Dictionary<string, NodeInfo> _nodes = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Replaces every node with the registry's current members.</summary>
    public void Reset(IEnumerable<NodeInfo> members)
    {
        lock (_gate)
        {
            _nodes.Clear();
            foreach (var node in members.Where(n => n.NodeId.Length > 0)) _nodes[node.NodeId] = node;
        }
    }

    /// <summary>Applies a change from the registry's stream; true when the placements must be computed again.</summary>
    public bool Apply(NodeEvent change)
    {
        if (change.Node is not { NodeId.Length: > 0 } node) return false;
        lock (_gate)
        {
            if (change.Kind == NodeEvent.Types.Kind.Removed) return _nodes.Remove(node.NodeId);
            if (_nodes.TryGetValue(node.NodeId, out var kept) && !Matters(kept, node)) return false;
            _nodes[node.NodeId] = node;
            return true;
        }
    }

    /// <summary>The nodes as last taken.</summary>
    public NodeInfo[] Snapshot()
    {
        lock (_gate) return _nodes.Values.ToArray();
    }

    /// <summary>Whether <paramref name="next"/> differs from <paramref name="kept"/> in anything the planner uses.</summary>
    public static bool Matters(NodeInfo kept, NodeInfo next) =>
        kept.GrpcEndpoint != next.GrpcEndpoint
        || kept.FetchesModels != next.FetchesModels
        || !kept.WeightTypes.ToHashSet(StringComparer.Ordinal).SetEquals(next.WeightTypes)
        || !kept.ModelsOnDisk.ToHashSet(StringComparer.Ordinal).SetEquals(next.ModelsOnDisk)
        || Moved(kept.AvailableMemoryBytes, next.AvailableMemoryBytes)
        || Moved(kept.BandwidthBytesPerSecond, next.BandwidthBytesPerSecond)
        || Moved(kept.Flops, next.Flops);

    private static bool Moved(double kept, double next) => next != kept && Math.Abs(next - kept) >= Tolerance * kept;
}
