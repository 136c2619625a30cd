namespace Exo.Planner.Planning;

/// <summary>What the planner needs to know about one node: its stable id and the memory it can give to weights and KV caches.</summary>
public sealed record NodeCapacity(string NodeId, long AvailableMemoryBytes);
