namespace Exo.Planner.Planning;

/// <summary>
/// The predicted time of one decode step, per stage: decoding is bound by reading the weights (bytes / bandwidth) or,
/// on a slow processor, by the arithmetic (operations / FLOPS), whichever takes longer. Network hops are not counted.
/// </summary>
public static class StepTime
{
    /// <summary>Seconds a node takes per decoded token to run <paramref name="layers"/> layers in the given ring position.</summary>
    public static double StageSeconds(NodeCapacity node, ModelProfile profile, int layers, bool first, bool last)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(profile);
        if (!node.Measured) throw new ArgumentException($"node '{node.NodeId}' has not measured its bandwidth", nameof(node));
        var reading = profile.StepReadBytes(layers, first, last) / node.BandwidthBytesPerSecond;
        var computing = node.Flops > 0 ? profile.StepOperations(layers, last) / node.Flops : 0;
        return Math.Max(reading, computing);
    }

    /// <summary>Each stage's predicted time per token, or null when a stage's node is not among <paramref name="nodes"/> or has not measured its speed.</summary>
    public static StepPrediction? Predict(Placement placement, IEnumerable<NodeCapacity> nodes, ModelProfile profile)
    {
        ArgumentNullException.ThrowIfNull(placement);
        ArgumentNullException.ThrowIfNull(nodes);
        var byId = nodes.ToDictionary(n => n.NodeId, StringComparer.Ordinal);
        var stages = placement.Stages;
        var seconds = new double[stages.Count];
        for (var i = 0; i < stages.Count; i++)
        {
            if (!byId.TryGetValue(stages[i].NodeId, out var node) || !node.Measured) return null;
            seconds[i] = StageSeconds(node, profile, stages[i].Layers.Count, first: i == 0, last: i == stages.Count - 1);
        }

        return new StepPrediction(seconds);
    }
}

/// <summary>A ring's predicted time per decoded token, stage by stage.</summary>
public sealed record StepPrediction(IReadOnlyList<double> StageSeconds)
{
    /// <summary>One stream alone: its token passes every stage in turn.</summary>
    public double TokenSeconds => StageSeconds.Sum();

    /// <summary>A busy pipeline, every stage working on another batch at once: the slowest stage sets the pace.</summary>
    public double BottleneckSeconds => StageSeconds.Count == 0 ? 0 : StageSeconds.Max();
}
