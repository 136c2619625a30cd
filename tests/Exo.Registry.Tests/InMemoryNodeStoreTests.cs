using Exo.Registry.Store;
using Microsoft.Extensions.Logging.Abstractions;

namespace Exo.Registry.Tests;

public sealed class InMemoryNodeStoreTests : NodeStoreContract
{
    protected override Task<INodeStore> CreateStoreAsync() =>
        Task.FromResult<INodeStore>(new InMemoryNodeStore(NullLogger<InMemoryNodeStore>.Instance, SweepInterval));
}
