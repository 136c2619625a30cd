using Exo.Planner.Store;

namespace Exo.Planner.Tests;

public sealed class InMemoryPlacementStoreTests : PlacementStoreContract
{
    protected override Task<IPlacementStore> CreateStoreAsync() => Task.FromResult<IPlacementStore>(new InMemoryPlacementStore());
}
