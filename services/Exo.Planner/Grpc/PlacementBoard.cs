using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Exo.Contracts.V1;

namespace Exo.Planner.Grpc;

/// <summary>
/// The current placement of each model, and everyone watching them. A model without a ready placement has an
/// explanation instead (no nodes yet, or "needs 9.1 GB, the cluster has 6.0 GB free").
/// </summary>
public sealed class PlacementBoard
{
    private readonly ConcurrentDictionary<string, Contracts.V1.Placement> _placements = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Channel<Contracts.V1.Placement>, string?> _watchers = new();
    private long _version;

    public long NextVersion() => Interlocked.Increment(ref _version);

    public Contracts.V1.Placement? Current(string model) => _placements.GetValueOrDefault(model);

    /// <summary>Publishes a placement; one with no stages (and a <c>Problem</c>) withdraws the model: it cannot be served now.</summary>
    public void Publish(Contracts.V1.Placement placement)
    {
        _placements[placement.ModelId] = placement;
        foreach (var (channel, model) in _watchers)
        {
            if (model is null || model == placement.ModelId) channel.Writer.TryWrite(placement);
        }
    }

    /// <summary>The current placements (of one model, or all), then every new one.</summary>
    public async IAsyncEnumerable<Contracts.V1.Placement> WatchAsync(string? model, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // Only the newest placement matters to a watcher that falls behind.
        var channel = Channel.CreateBounded<Contracts.V1.Placement>(new BoundedChannelOptions(16) { FullMode = BoundedChannelFullMode.DropOldest });
        _watchers[channel] = model;
        try
        {
            foreach (var current in _placements.Values.Where(p => model is null || p.ModelId == model)) channel.Writer.TryWrite(current);
            await foreach (var placement in channel.Reader.ReadAllAsync(cancellationToken)) yield return placement;
        }
        finally
        {
            _watchers.TryRemove(channel, out _);
        }
    }
}
