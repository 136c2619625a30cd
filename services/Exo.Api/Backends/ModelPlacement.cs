using Exo.Contracts.V1;

namespace Exo.Api.Backends;

/// <summary>
/// A model's current placement as this API serves it: one <see cref="ModelRing"/> per ring, in the planner's ring order,
/// each kept from the previous placement while its ring version is unchanged. Requests go to the least loaded ready ring.
/// </summary>
internal sealed class ModelPlacement(Placement placement, IReadOnlyList<ModelRing> rings)
{
    public Placement Placement { get; } = placement;

    public IReadOnlyList<ModelRing> Rings { get; } = rings;

    /// <summary>Why the model has no ring (the planner's words); null while it has one.</summary>
    public string? Problem => Rings.Count == 0 ? (Placement.Problem is { Length: > 0 } problem ? problem : "the planner placed no ring with stages") : null;

    /// <summary>Whether any ring has served (so a request may wait out a re-plan rather than be told to come back).</summary>
    public bool HasServed => Rings.Any(r => r.HasServed);

    /// <summary>
    /// The ready ring with the fewest requests open from this API, the earliest on ties, other than <paramref name="avoid"/>
    /// (a ring that just failed a request); null when none is ready.
    /// </summary>
    public ModelRing? LeastLoaded(ModelRing? avoid = null)
    {
        ModelRing? best = null;
        foreach (var ring in Rings)
        {
            if (!ring.Ready || ring == avoid) continue;
            if (best is null || ring.OpenRequests < best.OpenRequests) best = ring;
        }

        return best;
    }

    /// <summary>
    /// The KV cache the ready rings have left: a request runs on one ring, so its positions must fit the smallest ring's
    /// stages, while the free positions of all of them add up; the oldest report dates them. Null while no ring is ready.
    /// </summary>
    public KvRoom? Room()
    {
        var rooms = Rings.Where(r => r.Ready).Select(r => r.Room).OfType<KvRoom>().ToList();
        return rooms.Count == 0 ? null : new KvRoom(rooms.Sum(r => r.FreeTokens), rooms.Min(r => r.CapacityTokens), rooms.Min(r => r.SampledAt));
    }

    public PlacementView Describe() => new(Placement.ModelId, (long)Placement.Version, Rings.Count > 0 && Rings.All(r => r.Ready),
        [.. Rings.Select(r => r.Describe())], Problem);
}
