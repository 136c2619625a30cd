using Exo.Inference;

namespace Exo.Planner.Planning;

/// <summary>One stage of the ring: the node that runs it, its half-open layer range and the memory it was planned to use.</summary>
public sealed record PlacementStage(string NodeId, LayerRange Layers, long RequiredBytes);

/// <summary>
/// An ordered ring of stages covering every layer of a model exactly once: stage 0 holds the embeddings, the last stage
/// the final norm and lm head, and the last stage's sampled token goes back to stage 0.
/// </summary>
public sealed record Placement(string ModelId, long Version, IReadOnlyList<PlacementStage> Stages)
{
    /// <summary>Whether both place the same layers on the same nodes; the version is ignored, so an unchanged ring need not be republished.</summary>
    public bool SameRingAs(Placement other) =>
        ModelId == other.ModelId && Stages.SequenceEqual(other.Stages);

    public PlacementStage? StageOf(string nodeId) => Stages.FirstOrDefault(s => s.NodeId == nodeId);
}

/// <summary>The outcome of planning: a placement, or the reason there is none.</summary>
public sealed record PlacementResult(Placement? Placement, string? Error)
{
    public bool Succeeded => Placement is not null;

    public static PlacementResult Fit(Placement placement) => new(placement, null);

    public static PlacementResult NoFit(string error) => new(null, error);
}

/// <summary>The model cannot be placed on the nodes given; the message says how much memory is missing.</summary>
public sealed class PlacementException(string message) : Exception(message);
