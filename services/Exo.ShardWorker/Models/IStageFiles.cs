using Exo.Inference;

namespace Exo.ShardWorker.Models;

/// <summary>Where a stage's files are: the model's folder in the models directory, or the layers fetched from a peer.</summary>
public interface IStageFiles
{
    /// <summary>A folder holding the config, the tokenizer and at least the tensors of <paramref name="layers"/>, fetched first if need be.</summary>
    Task<string> FolderForAsync(LayerRange layers, CancellationToken cancellationToken);

    /// <summary>Bytes written of those needed while a fetch runs; null otherwise.</summary>
    FetchProgress? Fetching { get; }
}

/// <summary>How far a fetch of a stage's files has come.</summary>
public sealed record FetchProgress(long Done, long Total);

/// <summary>A model folder on this machine, which holds every layer.</summary>
public sealed record LocalModelFiles(string Directory) : IStageFiles
{
    public Task<string> FolderForAsync(LayerRange layers, CancellationToken cancellationToken) => Task.FromResult(Directory);

    public FetchProgress? Fetching => null;
}
