using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Exo.Registry.Store;

/// <summary>
/// Fans membership changes out to watchers: each gets the live nodes first, then every change after it joined. A
/// change can reach a watcher both in its snapshot and as a message (Redis delivers pub/sub late), so each watch
/// keeps the nodes it has reported and passes on only what changes that view.
/// </summary>
internal sealed class ChangeFeed
{
    private readonly Lock _lock = new();
    // Unbounded because membership changes are rare and a bounded queue would have to drop one.
    private readonly List<Channel<NodeChange>> _watchers = [];

    public void Publish(NodeChange change)
    {
        lock (_lock)
        {
            foreach (var watcher in _watchers) watcher.Writer.TryWrite(change);
        }
    }

    public async IAsyncEnumerable<NodeChange> WatchAsync(Func<CancellationToken, Task<IReadOnlyList<NodeRecord>>> snapshot,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateUnbounded<NodeChange>(new UnboundedChannelOptions { SingleReader = true });
        lock (_lock) _watchers.Add(channel);
        try
        {
            // Joined before the snapshot is read, so a change racing with it is seen, never lost.
            var reported = new Dictionary<string, NodeRecord>(StringComparer.Ordinal);
            foreach (var node in await snapshot(cancellationToken))
            {
                reported[node.NodeId] = node;
                yield return new NodeChange(NodeChangeKind.Added, node);
            }

            while (await channel.Reader.WaitToReadAsync(cancellationToken))
            {
                while (channel.Reader.TryRead(out var change))
                {
                    if (Relative(change, reported) is { } news) yield return news;
                }
            }
        }
        finally
        {
            lock (_lock) _watchers.Remove(channel);
        }
    }

    /// <summary>The change as this watcher should see it given what it was told so far, or null when it tells nothing new.</summary>
    private static NodeChange? Relative(NodeChange change, Dictionary<string, NodeRecord> reported)
    {
        var known = reported.GetValueOrDefault(change.Node.NodeId);
        if (change.Kind == NodeChangeKind.Removed)
        {
            if (known is null) return null;
            reported.Remove(change.Node.NodeId);
            return change;
        }

        if (known is not null && known.SameDetailsAs(change.Node)) return null;
        reported[change.Node.NodeId] = change.Node;
        return change with { Kind = known is null ? NodeChangeKind.Added : NodeChangeKind.Updated };
    }

    /// <summary>Ends every watch: the store is closing.</summary>
    public void Complete()
    {
        lock (_lock)
        {
            foreach (var watcher in _watchers) watcher.Writer.TryComplete();
        }
    }
}
