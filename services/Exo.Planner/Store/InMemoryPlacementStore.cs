using Exo.Contracts.V1;

namespace Exo.Planner.Store;

/// <summary>
/// Placements kept in this process only, with the same rules as <see cref="RedisPlacementStore"/>: the fallback for a
/// single-machine cluster without Redis. The counter starts again from 0 when the process restarts (the floor each caller
/// gives keeps versions rising).
/// </summary>
public sealed class InMemoryPlacementStore : IPlacementStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Placement> _placements = new(StringComparer.Ordinal);
    private long _version;

    public Task<long> NextVersionAsync(long atLeast, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _version = Math.Max(_version + 1, atLeast);
            return Task.FromResult(_version);
        }
    }

    public Task<bool> SaveAsync(Placement placement, CancellationToken cancellationToken)
    {
        PlacementRules.Validate(placement);
        lock (_lock)
        {
            if (_placements.TryGetValue(placement.ModelId, out var held) && held.Version >= placement.Version) return Task.FromResult(false);
            // Messages are mutable: keep a copy nobody else holds.
            _placements[placement.ModelId] = placement.Clone();
            return Task.FromResult(true);
        }
    }

    public Task<IReadOnlyList<Placement>> LoadAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            IReadOnlyList<Placement> all = _placements.Values.OrderBy(p => p.ModelId, StringComparer.Ordinal).Select(p => p.Clone()).ToArray();
            return Task.FromResult(all);
        }
    }
}
