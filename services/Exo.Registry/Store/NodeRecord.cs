using Exo.Contracts;

namespace Exo.Registry.Store;

/// <summary>
/// What a node says about itself when it registers, plus the times the registry keeps. The instance token is new for
/// every start of a node's process; with the stable node id it tells a restart of the same node from a cloned machine.
/// </summary>
public sealed record NodeRecord
{
    private const int MaxText = 256;
    private const int MaxModels = 1024;
    private const int MaxWeightTypes = 16;

    public required string NodeId { get; init; }
    public required string InstanceToken { get; init; }
    /// <summary>Absolute http(s) address of the node's gRPC endpoint.</summary>
    public required string GrpcEndpoint { get; init; }
    public required string Host { get; init; }
    public string Os { get; init; } = "";
    public string Arch { get; init; } = "";
    /// <summary>The compute backend the node runs layers on (cpu, vulkan).</summary>
    public string Backend { get; init; } = "";
    /// <summary>The GPU a "vulkan" node runs on; empty on the CPU.</summary>
    public string DeviceName { get; init; } = "";
    public long TotalMemoryBytes { get; init; }
    public long AvailableMemoryBytes { get; init; }
    public double MemoryBandwidthBytesPerSecond { get; init; }
    public double Flops { get; init; }
    public IReadOnlyList<string> ModelsOnDisk { get; init; } = [];
    /// <summary>The node fetches a model it is given but lacks, from a peer that has it.</summary>
    public bool FetchesModels { get; init; }
    /// <summary>The types the node can quantize weight matrices to as it loads them.</summary>
    public IReadOnlyList<string> WeightTypes { get; init; } = [];
    /// <summary>The software version the node runs.</summary>
    public string Version { get; init; } = "";
    public DateTimeOffset RegisteredAt { get; init; }
    public DateTimeOffset LastSeenAt { get; init; }

    /// <summary>Whether both describe the node alike, ignoring the registry's times.</summary>
    public bool SameDetailsAs(NodeRecord other) =>
        this with { RegisteredAt = default, LastSeenAt = default, ModelsOnDisk = [], WeightTypes = [] }
            == other with { RegisteredAt = default, LastSeenAt = default, ModelsOnDisk = [], WeightTypes = [] }
        && ModelsOnDisk.SequenceEqual(other.ModelsOnDisk, StringComparer.Ordinal)
        && WeightTypes.SequenceEqual(other.WeightTypes, StringComparer.Ordinal);

    /// <summary>Checks everything a node sent, since it arrives over the wire; the message names the node and the field.</summary>
    public void Validate()
    {
        if (!NodeIdentity.IsValid(NodeId))
            throw new ArgumentException($"node id '{NodeId}' is invalid: {NodeIdentity.Rule}");
        string Where() => $"node '{NodeId}'";
        Text(InstanceToken, "instance token", required: true);
        Text(Host, "host", required: true);
        Text(Os, "os", required: false);
        Text(Arch, "arch", required: false);
        Text(Backend, "backend", required: false);
        Text(DeviceName, "device name", required: false);
        Text(Version, "version", required: false);
        if (!Uri.TryCreate(GrpcEndpoint, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https") || GrpcEndpoint.Length > MaxText)
            throw new ArgumentException($"{Where()}: gRPC endpoint '{GrpcEndpoint}' is not an absolute http or https address");
        if (TotalMemoryBytes < 0 || AvailableMemoryBytes < 0 || AvailableMemoryBytes > TotalMemoryBytes)
            throw new ArgumentException($"{Where()}: memory must satisfy 0 <= available ({AvailableMemoryBytes}) <= total ({TotalMemoryBytes})");
        if (!double.IsFinite(MemoryBandwidthBytesPerSecond) || MemoryBandwidthBytesPerSecond < 0 || !double.IsFinite(Flops) || Flops < 0)
            throw new ArgumentException($"{Where()}: measured bandwidth and FLOPS must be finite and not negative");
        if (ModelsOnDisk is null || ModelsOnDisk.Count > MaxModels)
            throw new ArgumentException($"{Where()}: models on disk must be a list of at most {MaxModels}");
        foreach (var model in ModelsOnDisk) Text(model, "model name", required: true);
        if (WeightTypes is null || WeightTypes.Count > MaxWeightTypes)
            throw new ArgumentException($"{Where()}: weight types must be a list of at most {MaxWeightTypes}");
        foreach (var type in WeightTypes) Text(type, "weight type", required: true);

        void Text(string? value, string field, bool required)
        {
            if (value is null || (required && string.IsNullOrWhiteSpace(value)) || value.Length > MaxText || value.Any(char.IsControl))
                throw new ArgumentException($"{Where()}: {field} must be {(required ? "non-empty " : "")}printable text of at most {MaxText} characters");
        }
    }
}

public enum NodeChangeKind
{
    Added,
    Updated,
    Removed,
}

/// <summary>One change of membership: a node joined, re-registered with new details, or left (deregistered or lease expired).</summary>
public sealed record NodeChange(NodeChangeKind Kind, NodeRecord Node);
