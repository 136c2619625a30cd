namespace Exo.Hub.Tests;

/// <summary>The AppHost's --model: a folder is served as it is; a repository id is pulled into the cache from the (fake) hub first.</summary>
public sealed class HubModelsTests : IAsyncLifetime
{
    private readonly TempDirectory _home = new();
    private FakeHub _hub = null!;

    public async Task InitializeAsync() => _hub = await FakeHub.StartAsync(RepositoryPaths.ShippedModel);

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        _home.Dispose();
    }

    private Task<string?> Resolve(string? model) =>
        HubModels.ResolveAsync(model, new ModelCache(_home.Path), new HubOptions(_hub.Endpoint, null), TextWriter.Null, CancellationToken.None);

    [Fact]
    public async Task AFolderOrAPathIsServedAsItIsAndTheHubIsNotAsked()
    {
        Assert.Equal(RepositoryPaths.ShippedModel, await Resolve(RepositoryPaths.ShippedModel));
        Assert.Equal("./models/missing", await Resolve("./models/missing"));
        Assert.Null(await Resolve(null));
        Assert.Empty(_hub.Requests);
    }

    [Fact]
    public async Task ARepositoryIsPulledIntoTheCacheAndServedFromItsLink()
    {
        var folder = await Resolve($"{FakeHub.Organization}/{_hub.Name}");
        Assert.Equal(Path.Combine(_home.Path, "models", _hub.Name), folder);
        Assert.Equal(_hub.Files["model.safetensors"], await File.ReadAllBytesAsync(Path.Combine(folder!, "model.safetensors")));

        var missing = await Assert.ThrowsAsync<ModelDownloadException>(() => Resolve($"{FakeHub.Organization}/no-such-model"));
        Assert.Contains("does not exist", missing.Message);
    }
}
