using Exo.Contracts.V1;

namespace Exo.Api.Backends;

/// <summary>
/// A model's current placement as this API serves it: one <see cref="ModelRing"/> per ring, in the planner's ring order,
/// each kept from the previous placement while its ring version is unchanged. Requests go to the least loaded ready ring with room for them.
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
    /// The ring to run a request of <paramref name="tokens"/> KV positions (prompt and max tokens) on, other than
    /// <paramref name="avoid"/> (a ring that just failed a request); null when none is ready. See <see cref="Choose{TRing}"/>.
    /// </summary>
    public ModelRing? LeastLoaded(long tokens, ModelRing? avoid = null) => Choose(Rings, tokens, avoid);

    /// <summary>
    /// Among the ready rings other than <paramref name="avoid"/>, the one with the fewest requests open from this API (the
    /// earliest on ties) of those whose last report has room for <paramref name="tokens"/> positions; when none has, the
    /// least loaded of all, whose first stage queues or refuses the request.
    /// </summary>
    internal static TRing? Choose<TRing>(IReadOnlyList<TRing> rings, long tokens, TRing? avoid) where TRing : class, IRingLoad
    {
        TRing? fitting = null;
        TRing? least = null;
        foreach (var ring in rings)
        {
            if (!ring.Ready || ReferenceEquals(ring, avoid)) continue;
            if (least is null || ring.OpenRequests < least.OpenRequests) least = ring;
            if (ring.Room is { } room && room.FreeTokens >= tokens && (fitting is null || ring.OpenRequests < fitting.OpenRequests)) fitting = ring;
        }

        return fitting ?? least;
    }

    /// <summary>
    /// The KV cache the ready rings have left: the free positions of all of them add up, while a request runs on one ring,
    /// so the largest ring's capacity bounds what may be asked for; the oldest report dates them. Null while no ring is ready.
    /// </summary>
    public KvRoom? Room()
    {
        var rooms = Rings.Where(r => r.Ready).Select(r => r.Room).OfType<KvRoom>().ToList();
        return rooms.Count == 0 ? null : new KvRoom(rooms.Sum(r => r.FreeTokens), rooms.Max(r => r.CapacityTokens), rooms.Min(r => r.SampledAt));
    }

    public PlacementView Describe() => new(Placement.ModelId, (long)Placement.Version, Rings.Count > 0 && Rings.All(r => r.Ready),
        [.. Rings.Select(r => r.Describe())], Problem);
}
