namespace Exo.Registry.Store;

/// <summary>
/// Cluster membership with leases: a node registers with a lease that its heartbeats renew; when the lease runs out
/// the node is removed and watchers are told. Implementations share one contract (see the contract tests).
/// </summary>
public interface INodeStore : IAsyncDisposable
{
    /// <summary>
    /// Adds the node, or updates it when the same instance registers again. The returned record carries the
    /// registry's times. Throws <see cref="NodeConflictException"/> while another instance holds a live lease on the id.
    /// </summary>
    Task<NodeRecord> RegisterAsync(NodeRecord node, TimeSpan leaseTtl, CancellationToken cancellationToken);

    /// <summary>Renews the lease. False when the node is not registered (its lease expired: it must register again).</summary>
    Task<bool> HeartbeatAsync(string nodeId, string instanceToken, CancellationToken cancellationToken);

    /// <summary>Removes the node. False when it was not registered.</summary>
    Task<bool> DeregisterAsync(string nodeId, string instanceToken, CancellationToken cancellationToken);

    /// <summary>The live nodes, ordered by node id.</summary>
    Task<IReadOnlyList<NodeRecord>> ListAsync(CancellationToken cancellationToken);

    /// <summary>
    /// An Added change for every live node, then every change as it happens, until cancelled. A watcher that falls
    /// far behind may see a node's change twice, never miss one.
    /// </summary>
    IAsyncEnumerable<NodeChange> WatchAsync(CancellationToken cancellationToken);
}
