namespace Exo.Hub.Tests;

/// <summary>What the hub tests share: the fake hub serving models/exo-tiny and a scratch folder, made and removed around each test.</summary>
public abstract class FakeHubTest : IAsyncLifetime
{
    protected TempDirectory Scratch { get; } = new();

    protected FakeHub FakeHub { get; private set; } = null!;

    public async Task InitializeAsync() => FakeHub = await FakeHub.StartAsync(RepositoryPaths.ShippedModel);

    public virtual async Task DisposeAsync()
    {
        await FakeHub.DisposeAsync();
        Scratch.Dispose();
    }
}
