using Microsoft.Extensions.Logging;

namespace Exo.Registry.Store;

/// <summary>
/// Membership kept in this process only, with the same leases, conflicts and changes as <see cref="RedisNodeStore"/>:
/// the fallback for a single-machine cluster without Redis. Everything is lost when the process stops.
/// </summary>
public sealed class InMemoryNodeStore : INodeStore
{
    private sealed record Lease(NodeRecord Node, TimeSpan Ttl, DateTimeOffset ExpiresAt);

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Lease> _leases = new(StringComparer.Ordinal);
    private readonly ChangeFeed _feed = new();
    private readonly TimeProvider _time;
    private readonly LeaseSweeper _sweeper;

    public InMemoryNodeStore(ILogger<InMemoryNodeStore> logger, TimeSpan? sweepInterval = null, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _sweeper = new LeaseSweeper(sweepInterval ?? NodeStoreDefaults.SweepInterval, _time, _ => Sweep(), logger);
    }

    public Task<NodeRecord> RegisterAsync(NodeRecord node, TimeSpan leaseTtl, CancellationToken cancellationToken)
    {
        NodeStoreDefaults.ValidateRegistration(node, leaseTtl);
        NodeChange change;
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            var held = Live(node.NodeId, now);
            if (held is not null && held.Node.InstanceToken != node.InstanceToken) throw NodeConflictException.For(held.Node, node.Host, held.Ttl);
            var stored = node with { RegisteredAt = held?.Node.RegisteredAt ?? now, LastSeenAt = now };
            _leases[node.NodeId] = new Lease(stored, leaseTtl, now + leaseTtl);
            change = new NodeChange(held is null ? NodeChangeKind.Added : NodeChangeKind.Updated, stored);
            _feed.Publish(change);
        }

        return Task.FromResult(change.Node);
    }

    public Task<bool> HeartbeatAsync(string nodeId, string instanceToken, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            if (Live(nodeId, now) is not { } held) return Task.FromResult(false);
            if (held.Node.InstanceToken != instanceToken) throw NodeConflictException.ForToken(nodeId);
            _leases[nodeId] = held with { Node = held.Node with { LastSeenAt = now }, ExpiresAt = now + held.Ttl };
            return Task.FromResult(true);
        }
    }

    public Task<bool> DeregisterAsync(string nodeId, string instanceToken, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (Live(nodeId, _time.GetUtcNow()) is not { } held) return Task.FromResult(false);
            if (held.Node.InstanceToken != instanceToken) throw NodeConflictException.ForToken(nodeId);
            _leases.Remove(nodeId);
            _feed.Publish(new NodeChange(NodeChangeKind.Removed, held.Node));
            return Task.FromResult(true);
        }
    }

    public Task<IReadOnlyList<NodeRecord>> ListAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            IReadOnlyList<NodeRecord> live = _leases.Values.Where(l => l.ExpiresAt > now).Select(l => l.Node)
                .OrderBy(n => n.NodeId, StringComparer.Ordinal).ToArray();
            return Task.FromResult(live);
        }
    }

    public IAsyncEnumerable<NodeChange> WatchAsync(CancellationToken cancellationToken) => _feed.WatchAsync(ListAsync, cancellationToken);

    // Caller holds the lock. An expired lease that the sweep has not reached yet counts as gone.
    private Lease? Live(string nodeId, DateTimeOffset now) =>
        _leases.TryGetValue(nodeId, out var lease) && lease.ExpiresAt > now ? lease : null;

    private Task Sweep()
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            foreach (var expired in _leases.Values.Where(l => l.ExpiresAt <= now).ToArray())
            {
                _leases.Remove(expired.Node.NodeId);
                _feed.Publish(new NodeChange(NodeChangeKind.Removed, expired.Node));
            }
        }

        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _sweeper.DisposeAsync();
        _feed.Complete();
    }
}
