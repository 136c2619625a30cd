using Exo.Contracts.V1;

namespace Exo.Planner.Store;

/// <summary>
/// Where placements outlive the planner process: the version counter and the latest placement of each model. Both
/// implementations share one contract (see the contract tests).
/// </summary>
public interface IPlacementStore
{
    /// <summary>
    /// A version greater than every one handed out before by this store, whichever planner instance asked, and at least
    /// <paramref name="atLeast"/>: the counter moves up to it, so every planner sharing the store goes on from there.
    /// </summary>
    Task<long> NextVersionAsync(long atLeast, CancellationToken cancellationToken);

    /// <summary>
    /// Keeps the placement as its model's latest, unless the store already holds one of the same or a higher version
    /// (another planner instance got there first): then nothing changes and the answer is false.
    /// Throws <see cref="ArgumentException"/> for a placement that breaks <see cref="PlacementRules"/>.
    /// </summary>
    Task<bool> SaveAsync(Placement placement, CancellationToken cancellationToken);

    /// <summary>The latest placement of every model, ordered by model id; damaged entries are left out.</summary>
    Task<IReadOnlyList<Placement>> LoadAsync(CancellationToken cancellationToken);
}
