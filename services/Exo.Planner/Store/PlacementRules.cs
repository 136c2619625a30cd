using Exo.Contracts.V1;

namespace Exo.Planner.Store;

/// <summary>
/// What a well-formed placement is, checked before one is stored and again when one is read back (Redis is shared,
/// so anything may be found there): a version, a model, and either rings, each with a distinct version no newer than the
/// placement's and stages covering the same layers from 0 without gaps or overlaps, every stage on a different node; or
/// no rings and the reason why.
/// </summary>
public static class PlacementRules
{
    private const int MaxModelIdLength = 256;

    /// <summary>The first rule the placement breaks, or null when it is well formed.</summary>
    public static string? Problem(Placement placement)
    {
        ArgumentNullException.ThrowIfNull(placement);
        if (placement.Version == 0) return "a placement needs a version (from 1)";
        if (string.IsNullOrWhiteSpace(placement.ModelId) || placement.ModelId.Length > MaxModelIdLength || placement.ModelId.Any(char.IsControl))
            return $"a placement needs a model id of 1 to {MaxModelIdLength} printable characters";
        if (placement.Rings.Count == 0)
            return string.IsNullOrWhiteSpace(placement.Problem) ? $"placement v{placement.Version} of '{placement.ModelId}' has neither rings nor a problem (stored before replicas, or corrupt)" : null;
        if (placement.Problem.Length > 0) return $"placement v{placement.Version} of '{placement.ModelId}' has rings and a problem";

        var nodes = new HashSet<string>(StringComparer.Ordinal);
        var versions = new HashSet<ulong>();
        uint? layers = null;
        foreach (var ring in placement.Rings)
        {
            if (ring.Version == 0 || ring.Version > placement.Version || !versions.Add(ring.Version))
                return $"a ring of placement v{placement.Version} of '{placement.ModelId}' has version {ring.Version}, expected a distinct one from 1 to the placement's";
            if (ring.Stages.Count == 0) return $"ring v{ring.Version} of placement v{placement.Version} of '{placement.ModelId}' has no stages";
            uint next = 0;
            foreach (var stage in ring.Stages)
            {
                if (string.IsNullOrWhiteSpace(stage.NodeId) || string.IsNullOrWhiteSpace(stage.GrpcEndpoint))
                    return $"a stage of placement v{placement.Version} of '{placement.ModelId}' lacks a node id or endpoint";
                if (!nodes.Add(stage.NodeId)) return $"node '{stage.NodeId}' has two stages in placement v{placement.Version} of '{placement.ModelId}'";
                if (stage.LayerStart != next || stage.LayerEnd <= stage.LayerStart)
                    return $"stage of node '{stage.NodeId}' in placement v{placement.Version} of '{placement.ModelId}' runs layers [{stage.LayerStart}, {stage.LayerEnd}), expected a non-empty range from {next}";
                next = stage.LayerEnd;
            }

            if (layers is not null && next != layers) return $"the rings of placement v{placement.Version} of '{placement.ModelId}' end at different layers ({layers} and {next})";
            layers = next;
        }

        return null;
    }

    /// <summary>Throws <see cref="ArgumentException"/> with the first rule the placement breaks.</summary>
    public static void Validate(Placement placement)
    {
        if (Problem(placement) is { } problem) throw new ArgumentException(problem, nameof(placement));
    }
}
