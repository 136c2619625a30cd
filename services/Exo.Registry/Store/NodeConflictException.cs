using Exo.Contracts;

namespace Exo.Registry.Store;

/// <summary>
/// A second instance claims a node id whose lease another instance still holds: most often a machine (or VM image)
/// was cloned together with its node-id file.
/// </summary>
public sealed class NodeConflictException(string message) : Exception(message)
{
    internal static NodeConflictException For(NodeRecord holder, string claimingHost, TimeSpan leaseTtl) => new(
        $"node id '{holder.NodeId}' is already registered by host '{holder.Host}' (endpoint {holder.GrpcEndpoint}) from another process, "
        + $"and its lease is live; the registration from host '{claimingHost}' is refused. If this machine was cloned from that one, "
        + $"delete the '{NodeIdentity.FileName}' file in this node's data directory and restart it to get a new id. If it is the "
        + $"same machine restarting, its old lease expires within {leaseTtl.TotalSeconds:0.#} s.");

    internal static NodeConflictException ForToken(string nodeId) => new(
        $"node id '{nodeId}' is held by another instance; this process must stop using it (was the machine cloned? "
        + $"delete the '{NodeIdentity.FileName}' file in the node's data directory to get a new id)");
}
