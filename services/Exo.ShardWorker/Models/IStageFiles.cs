using Exo.Inference;

namespace Exo.ShardWorker.Models;

/// <summary>Where a stage's files are: the model's folder in the models directory, or the layers fetched from a peer.</summary>
public interface IStageFiles
{
    /// <summary>A folder holding the config, the tokenizer and at least the tensors of <paramref name="layers"/>, fetched first if need be.</summary>
    Task<string> FolderForAsync(LayerRange layers, CancellationToken cancellationToken);
}

/// <summary>A model folder on this machine, which holds every layer.</summary>
public sealed record LocalModelFiles(string Directory) : IStageFiles
{
    public Task<string> FolderForAsync(LayerRange layers, CancellationToken cancellationToken) => Task.FromResult(Directory);
}
