namespace Exo.Planner.Planning;

/// <summary>
/// What the planner needs to know about one node: its stable id, the memory it can give to weights and KV caches, and
/// its speed as the node measured it (0 when not measured).
/// </summary>
/// <param name="BandwidthBytesPerSecond">Read bandwidth of the memory its layers live in: decoding reads every weight once per token.</param>
/// <param name="Flops">Floating-point operations per second; 0 leaves compute out of the node's predicted time.</param>
public sealed record NodeCapacity(string NodeId, long AvailableMemoryBytes, double BandwidthBytesPerSecond = 0, double Flops = 0)
{
    /// <summary>Whether the planner can predict the node's time per token, and so split layers by speed.</summary>
    public bool Measured => BandwidthBytesPerSecond > 0;
}
