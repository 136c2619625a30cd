using Exo.ShardWorker.Models;
using Exo.ShardWorker.Stages;

namespace Exo.ShardWorker.Tests;

/// <summary>A placement's model id, which comes over the network, names a folder of the models directory and nothing else.</summary>
public sealed class ModelFolderTests
{
    [Fact]
    public void AModelIdIsAFolderDirectlyInsideTheModelsDirectory()
    {
        using var models = new TempDirectory();
        Assert.Equal(Path.Combine(models.Path, "exo-tiny"), ModelFolder.Resolve(models.Path, "exo-tiny"));
        Assert.Equal(Path.Combine(models.Path, "Qwen2.5 0.5B"), ModelFolder.Resolve(models.Path + "/", "Qwen2.5 0.5B"));

        // A link its owner put there is followed, as a Hugging Face cache needs: only names come from the network.
        using var elsewhere = new TempDirectory();
        Directory.CreateSymbolicLink(Path.Combine(models.Path, "linked"), elsewhere.Path);
        Assert.Equal(Path.Combine(models.Path, "linked"), ModelFolder.Resolve(models.Path, "linked"));
    }

    [Theory]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("../exo-tiny")]
    [InlineData("../../etc")]
    [InlineData("/etc")]
    [InlineData("exo-tiny/../../secrets")]
    [InlineData("nested/model")]
    [InlineData("..\\windows")]
    [InlineData("nul\0byte")]
    public void ANameThatLeadsElsewhereIsRefused(string modelId)
    {
        using var models = new TempDirectory();
        Assert.Null(ModelFolder.Resolve(models.Path, modelId));
    }
}
