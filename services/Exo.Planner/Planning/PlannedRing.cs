namespace Exo.Planner.Planning;

/// <summary>
/// One ring (replica) of a model's placement: its version, or null for a ring that is new in this plan (its publisher
/// gives it one), and its stages in ring order.
/// </summary>
public sealed record PlannedRing(long? Version, IReadOnlyList<PlacementStage> Stages)
{
    /// <summary>Whether both run the same layers on the same nodes; the planned memory is not compared, since a ring read back from a placement message does not carry it.</summary>
    public bool SameLayout(PlannedRing other) =>
        Stages.Select(s => (s.NodeId, s.Layers)).SequenceEqual(other.Stages.Select(s => (s.NodeId, s.Layers)));
}

/// <summary>The rings of a model, in order; or, when not one fits, the reason.</summary>
public sealed record ReplicaResult(IReadOnlyList<PlannedRing> Rings, string? Error)
{
    public bool Succeeded => Error is null;
}
