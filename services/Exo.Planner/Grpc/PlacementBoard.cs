using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Exo.Planner.Store;

namespace Exo.Planner.Grpc;

/// <summary>
/// The current placement of each model, and everyone watching them. Every placement is written through the store
/// first, so a restarted planner answers with the last one at once. A model without a ready placement has an
/// explanation instead (no nodes yet, or "needs 9.1 GB, the cluster has 6.0 GB free").
/// Versions never go backwards, even when the store forgets its counter (Redis restarted empty) while workers and APIs
/// hold the versions it gave, since they ignore any placement not newer than theirs: each version is at least the Unix
/// time in milliseconds when it was made, and above every version this planner has handed out, restored or published.
/// </summary>
public sealed partial class PlacementBoard(IPlacementStore store, TimeProvider time, ILogger<PlacementBoard> logger)
{
    private readonly ConcurrentDictionary<string, Contracts.V1.Placement> _placements = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Watcher, byte> _watchers = new();
    private long _highest;

    /// <summary>
    /// One watcher's undelivered placements, the newest per model: a watcher that falls behind skips versions it no
    /// longer needs, but never loses a model's latest placement, however many models change meanwhile.
    /// </summary>
    private sealed class Watcher(string? model)
    {
        private readonly Dictionary<string, Contracts.V1.Placement> _pending = new(StringComparer.Ordinal);
        private readonly Channel<bool> _signal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

        public void Offer(Contracts.V1.Placement placement)
        {
            if (model is not null && model != placement.ModelId) return;
            lock (_pending)
            {
                if (_pending.TryGetValue(placement.ModelId, out var held) && held.Version >= placement.Version) return;
                _pending[placement.ModelId] = placement;
            }

            _signal.Writer.TryWrite(true);
        }

        public async Task<Contracts.V1.Placement[]> TakeAsync(CancellationToken cancellationToken)
        {
            await _signal.Reader.ReadAsync(cancellationToken);
            lock (_pending)
            {
                var taken = _pending.Values.OrderBy(p => p.Version).ToArray();
                _pending.Clear();
                return taken;
            }
        }
    }

    /// <summary>The next version: the store's, raised to the clock and above every version this planner has seen.</summary>
    public async Task<long> NextVersionAsync(CancellationToken cancellationToken)
    {
        // The clock covers a planner that restarted as well (nothing seen yet); the versions seen cover a clock set back.
        var floor = Math.Max(time.GetUtcNow().ToUnixTimeMilliseconds(), Interlocked.Read(ref _highest) + 1);
        var version = await store.NextVersionAsync(floor, cancellationToken);
        Seen(version);
        return version;
    }

    private void Seen(long version)
    {
        for (var held = Interlocked.Read(ref _highest); version > held; held = Interlocked.Read(ref _highest))
        {
            if (Interlocked.CompareExchange(ref _highest, version, held) == held) return;
        }
    }

    public Contracts.V1.Placement? Current(string model) => _placements.GetValueOrDefault(model);

    /// <summary>
    /// Takes the stored placements that <paramref name="usable"/> accepts as the current ones, without telling watchers
    /// (there are none before the planner starts). Returns those taken.
    /// </summary>
    public async Task<IReadOnlyList<Contracts.V1.Placement>> RestoreAsync(Func<Contracts.V1.Placement, bool> usable, CancellationToken cancellationToken)
    {
        var restored = (await store.LoadAsync(cancellationToken)).Where(usable).ToArray();
        foreach (var placement in restored)
        {
            _placements[placement.ModelId] = placement;
            Seen((long)placement.Version);
        }

        return restored;
    }

    /// <summary>
    /// Stores and publishes a placement; one with no stages (and a <c>Problem</c>) withdraws the model: it cannot be
    /// served now. A placement older than the stored one (another planner instance published since) is dropped.
    /// </summary>
    public async Task PublishAsync(Contracts.V1.Placement placement, CancellationToken cancellationToken)
    {
        if (!await store.SaveAsync(placement, cancellationToken))
        {
            LogSuperseded(placement.ModelId, placement.Version);
            return;
        }

        _placements[placement.ModelId] = placement;
        Seen((long)placement.Version);
        foreach (var watcher in _watchers.Keys) watcher.Offer(placement);
    }

    /// <summary>The current placements (of one model, or all), then every new one.</summary>
    public async IAsyncEnumerable<Contracts.V1.Placement> WatchAsync(string? model, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var watcher = new Watcher(model);
        _watchers[watcher] = 0;
        try
        {
            foreach (var current in _placements.Values) watcher.Offer(current);
            while (true)
            {
                foreach (var placement in await watcher.TakeAsync(cancellationToken)) yield return placement;
            }
        }
        finally
        {
            _watchers.TryRemove(watcher, out _);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Placement v{Version} of {Model} was not published: the store holds a newer one from another planner")]
    private partial void LogSuperseded(string model, ulong version);
}
