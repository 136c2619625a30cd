using System.Collections.Concurrent;
using Exo.Contracts;
using Exo.Contracts.V1;
using Exo.Ring;
using Exo.ServiceDefaults;
using Exo.ShardWorker.Models;
using Exo.ShardWorker.Node;
using Microsoft.Extensions.Options;

namespace Exo.ShardWorker.Stages;

/// <summary>This node's stage of every model it takes part in, found by model id or by a request it holds.</summary>
public sealed partial class StageHosts(
    IOptions<ShardWorkerOptions> options, NodeId node, WorkerCompute compute, ClusterSecret secret, PeerReports peers, ModelPeers modelPeers, ServiceTelemetry telemetry,
    StageMetrics metrics, TimeProvider time, ILoggerFactory loggers, ILogger<StageHosts> logger)
    : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, StageHost> _hosts = new(StringComparer.Ordinal);

    public IEnumerable<StageHost> All => _hosts.Values;

    public StageHost? Find(string modelId) => _hosts.GetValueOrDefault(modelId);

    public StageHost? Holding(string requestId) => _hosts.Values.FirstOrDefault(h => h.Holds(requestId));

    /// <summary>The model folders in the models directory, by name: what this node can be given.</summary>
    public IReadOnlyList<string> ModelsOnDisk() =>
        Directory.Exists(options.Value.ModelsDirectory)
            ? Directory.GetDirectories(options.Value.ModelsDirectory).Where(IsModelFolder).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>A folder that holds a model, rather than one being copied in or left empty: what is loaded and lent from disk.</summary>
    private static bool IsModelFolder(string directory) => File.Exists(Path.Combine(directory, Inference.Model.ModelConfig.FileName));

    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan LastRetry = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<string, ulong> _newest = new(StringComparer.Ordinal);

    public Task ApplyAsync(Placement placement, CancellationToken cancellationToken)
    {
        _newest.AddOrUpdate(placement.ModelId, placement.Version, (_, seen) => Math.Max(seen, placement.Version));
        return ApplyAsync(placement, FirstRetry, cancellationToken);
    }

    private async Task ApplyAsync(Placement placement, TimeSpan retry, CancellationToken cancellationToken)
    {
        var host = _hosts.GetValueOrDefault(placement.ModelId);
        if (host is null)
        {
            if (placement.Rings.SelectMany(r => r.Stages).All(s => s.NodeId != node.Value)) return;
            if (ModelFolder.Resolve(options.Value.ModelsDirectory, placement.ModelId) is not { } directory
                || ModelFolder.Resolve(options.Value.FetchedDirectory, placement.ModelId) is not { } fetched)
            {
                LogNotAFolderName(placement.ModelId, placement.Version, options.Value.ModelsDirectory);
                return;
            }

            // A model not on disk is fetched, a layer range at a time, from the nodes that have it.
            IStageFiles files = IsModelFolder(directory)
                ? new LocalModelFiles(directory)
                : new FetchedModelFiles(placement.ModelId, fetched, modelPeers, loggers.CreateLogger<FetchedModelFiles>());
            host = _hosts.GetOrAdd(placement.ModelId, id => new StageHost(
                id, files, node.Value, compute.Backend, options.Value.KvCacheMegabytes * 1024 * 1024, secret, telemetry.ActivitySource, metrics, time, loggers.CreateLogger<StageHost>(),
                peers.Lost));
            metrics.Track(host);
        }

        try
        {
            await host.ApplyAsync(placement, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A copy from a peer that failed (the peer restarted, the network dropped) or a load that failed is tried
            // again while this placement is the newest, backing off; a newer one, or the stream's end, stops it.
            LogLoadFailed(e, placement.ModelId, placement.Version, retry.TotalSeconds);
            _ = RetryLaterAsync(placement, retry, cancellationToken);
        }
    }

    private async Task RetryLaterAsync(Placement placement, TimeSpan retry, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(retry, cancellationToken);
            if (_newest.GetValueOrDefault(placement.ModelId) == placement.Version)
                await ApplyAsync(placement, TimeSpan.FromTicks(Math.Min(2 * retry.Ticks, LastRetry.Ticks)), cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The placement stream ended: it sends the current placement again when it reconnects.
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var host in _hosts.Values) await host.DisposeAsync();
    }

    [LoggerMessage(Level = LogLevel.Error,
        Message = "Placement v{Version} names model '{Model}', which is not a folder name: only the folders directly inside {Directory} are loaded; refused")]
    private partial void LogNotAFolderName(string model, ulong version, string directory);

    [LoggerMessage(Level = LogLevel.Error, Message = "Could not load {Model} for placement v{Version}; trying again in {Seconds:0} s")]
    private partial void LogLoadFailed(Exception exception, string model, ulong version, double seconds);
}

/// <summary>This node's stable id, read from its data directory at start.</summary>
public sealed record NodeId(string Value);
