using Exo.Hub;
using Exo.Inference;
using Exo.Inference.Model;

namespace Exo.ShardWorker.Models;

/// <summary>
/// A model this node lacks on disk: each layer range it is given is fetched into a folder of its own under
/// <paramref name="folder"/> (config, tokenizer, and only the tensors those layers read), from the nodes that have the
/// model. A folder is used only once a marker says every file in it is complete and verified, so a fetch cut short by a
/// crash is resumed, never loaded; the folders of ranges the node no longer runs are deleted once a new one is complete.
/// </summary>
public sealed partial class FetchedModelFiles(string modelId, string folder, ModelPeers peers, ILogger logger) : IStageFiles
{
    private const string CompleteMarker = ".complete";
    private static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(2);
    private volatile FetchProgress? _fetching;

    public FetchProgress? Fetching => _fetching;

    public async Task<string> FolderForAsync(LayerRange layers, CancellationToken cancellationToken)
    {
        var target = Path.Combine(folder, $"layers-{layers.Start}-{layers.End}");
        if (File.Exists(Path.Combine(target, CompleteMarker))) return target;

        var sources = await peers.SourcesAsync(modelId, cancellationToken);
        if (sources.Count == 0)
            throw new InvalidOperationException($"this node has no '{modelId}' and no node in the cluster has it to copy from: put the model folder in a worker's models directory");
        LogFetching(modelId, layers.ToString(), string.Join(", ", sources.Select(s => s.Name)));
        var started = DateTime.UtcNow;

        // The config says how many layers the model has and whether its head is the embedding matrix: it decides the
        // tensors. A model without one (a GGUF file, which holds its own) is fetched whole.
        var configOnly = new ModelDownloader(new DownloadOptions { Files = path => path == ModelConfig.FileName });
        var moved = (await configOnly.DownloadAsync(sources, target, null, cancellationToken)).BytesTransferred;
        var config = File.Exists(Path.Combine(target, ModelConfig.FileName)) ? ModelConfig.Load(target) : null;
        var stage = new ModelDownloader(new DownloadOptions
        {
            Files = IsModelFile,
            Tensors = config is null ? null : name => StageWeights.Reads(name, layers, config.LayerCount, config.TieWordEmbeddings),
        });
        var progress = new ThrottledProgress(ProgressEvery, p => LogProgress(modelId, layers.ToString(), p.Done / 1e6, p.Total / 1e6),
            track: p => _fetching = new FetchProgress(p.Done, p.Total));
        _fetching = new FetchProgress(0, 0);
        DownloadResult result;
        try
        {
            result = await stage.DownloadAsync(sources, target, progress, cancellationToken);
        }
        finally
        {
            _fetching = null;
        }

        moved += result.BytesTransferred;

        await File.WriteAllTextAsync(Path.Combine(target, CompleteMarker), $"{modelId} layers {layers}\n", cancellationToken);
        LogFetched(modelId, layers.ToString(), moved / 1e6, (DateTime.UtcNow - started).TotalSeconds, string.Join(", ", result.Files.Select(f => f.Source).OfType<string>().Distinct()));
        foreach (var other in Directory.GetDirectories(folder).Where(d => d != target)) TryDelete(other);
        return target;
    }

    /// <summary>What a stage loads: configs and tokenizer files (JSON, text, SentencePiece), chat templates and weights; not READMEs or test data.</summary>
    private static bool IsModelFile(string path) =>
        Path.GetExtension(path) is ".json" or ".jinja" or ".txt" or ".model" or ".safetensors" or ".gguf";

    private void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException e)
        {
            LogNotDeleted(directory, e.Message);
        }
        catch (UnauthorizedAccessException e)
        {
            LogNotDeleted(directory, e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "This node lacks {Model}: fetching layers {Layers} from {Sources}")]
    private partial void LogFetching(string model, string layers, string sources);

    [LoggerMessage(Level = LogLevel.Information, Message = "Fetching {Model} layers {Layers}: {DoneMb:0.0} of {TotalMb:0.0} MB")]
    private partial void LogProgress(string model, string layers, double doneMb, double totalMb);

    [LoggerMessage(Level = LogLevel.Information, Message = "Fetched {Model} layers {Layers}: {Mb:0.0} MB in {Seconds:0.0} s from {Sources}")]
    private partial void LogFetched(string model, string layers, double mb, double seconds, string sources);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not delete {Directory}, fetched for layers this node no longer runs ({Reason})")]
    private partial void LogNotDeleted(string directory, string reason);
}
