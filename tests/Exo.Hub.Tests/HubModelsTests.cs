namespace Exo.Hub.Tests;

/// <summary>The AppHost's --model: a folder is served as it is; a repository id is pulled into the cache from the (fake) hub first.</summary>
public sealed class HubModelsTests : FakeHubTest
{

    private Task<string?> Resolve(string? model) =>
        HubModels.ResolveAsync(model, new ModelCache(Scratch.Path), new HubOptions(FakeHub.Endpoint, null), TextWriter.Null, CancellationToken.None);

    [Fact]
    public async Task AFolderOrAPathIsServedAsItIsAndTheHubIsNotAsked()
    {
        Assert.Equal(RepositoryPaths.ShippedModel, await Resolve(RepositoryPaths.ShippedModel));
        Assert.Equal("./models/missing", await Resolve("./models/missing"));
        Assert.Null(await Resolve(null));
        Assert.Empty(FakeHub.Requests);
    }

    [Fact]
    public async Task ARepositoryIsPulledIntoTheCacheAndServedFromItsLink()
    {
        var folder = await Resolve($"{FakeHub.Organization}/{FakeHub.Name}");
        Assert.Equal(Path.Combine(Scratch.Path, "models", FakeHub.Name), folder);
        Assert.Equal(FakeHub.Files["model.safetensors"], await File.ReadAllBytesAsync(Path.Combine(folder!, "model.safetensors")));

        var missing = await Assert.ThrowsAsync<ModelDownloadException>(() => Resolve($"{FakeHub.Organization}/no-such-model"));
        Assert.Contains("does not exist", missing.Message);
    }
}
