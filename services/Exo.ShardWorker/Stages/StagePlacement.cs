using Exo.Contracts;
using Exo.Contracts.V1;
using Exo.Inference;
using Exo.Inference.Backends;
using Exo.Inference.Model;
using Exo.Inference.Pipeline;
using Exo.Inference.Sampling;
using Exo.Text.Constraints;
using Exo.Text.Tokenization;
using Exo.Ring;
using Exo.ShardWorker.Models;

namespace Exo.ShardWorker.Stages;

/// <summary>
/// This node's layers of one model under the current placement: it loads the layers a new placement assigns (reusing
/// those already loaded), links the next stage, runs the loop that reads the runtime's results, and unloads what the ring
/// no longer needs. What becomes of requests is <see cref="StageHost"/>'s job; the handlers tell it what happened.
/// </summary>
/// <param name="onReply">A message the next stage sent back on the link.</param>
/// <param name="onResult">A result of the runtime that runs these layers.</param>
/// <param name="onReplaced">A newer placement (its version given) is being applied: the ring of the open requests no longer exists.</param>
/// <param name="onNextLost">The stream to the next stage broke: the node may be gone.</param>
internal sealed partial class StagePlacement(
    string modelId, IStageFiles files, string nodeId, BackendOptions backend, long kvBudgetBytes, ClusterSecret secret, TimeProvider time, ILogger logger,
    Action<ForwardMessage> onReply, Action<StagePlacement.Loaded, StageResult> onResult, Action<ulong> onReplaced, Action<PeerLoss> onNextLost)
    : IAsyncDisposable
{
    private readonly SemaphoreSlim _applying = new(1, 1);
    private volatile Serving? _serving;
    private long _version;

    /// <summary>Layers loaded in memory, with the runtime running them and the loop forwarding its results.</summary>
    public sealed record Loaded(LayerRange Layers, IModelStage Stage, StageRuntime Runtime)
    {
        public Task Pump { get; set; } = Task.CompletedTask;

        /// <summary>What every message for these layers is checked against.</summary>
        public RingLimits Limits { get; } = RingLimits.Of(Stage.Config);

        /// <summary>The layers as spans and metrics name them, made once rather than at every step.</summary>
        public string LayersText { get; } = Layers.ToString();
    }

    /// <summary>What this node serves for one version of its ring (the version requests carry).</summary>
    public sealed record Serving(long Version, Loaded Loaded, ForwardLink? Next, bool IsFirst, bool IsLast);

    /// <summary>What this node serves now; null while a placement loads or when the current one leaves it out.</summary>
    public Serving? Current => _serving;

    /// <summary>The latest placement version applied.</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>Follows a new placement: serves the ring that includes this node, loading its layers (reusing those
    /// already loaded) and linking the next stage, and tells the requests of the previous ring, which no longer exists.
    /// A placement that keeps this node's ring as it was (the same ring version) changes nothing here.</summary>
    public async Task ApplyAsync(Placement placement, CancellationToken cancellationToken)
    {
        await _applying.WaitAsync(cancellationToken);
        try
        {
            if ((long)placement.Version <= Interlocked.Read(ref _version)) return;
            var ring = placement.Rings.FirstOrDefault(r => r.Stages.Any(s => s.NodeId == nodeId));
            var old = _serving;
            if (ring is not null && old?.Version == (long)ring.Version)
            {
                // Another ring was re-planned or added: this one's requests go on.
                Interlocked.Exchange(ref _version, (long)placement.Version);
                return;
            }

            _serving = null;
            onReplaced(placement.Version);

            if (ring is null)
            {
                await ReleaseAsync(old, keepLoaded: null, keepLink: null);
                Interlocked.Exchange(ref _version, (long)placement.Version);
                LogNotPlaced(modelId, placement.Version);
                return;
            }

            var stages = ring.Stages;
            var index = stages.ToList().FindIndex(s => s.NodeId == nodeId);
            var stage = stages[index];
            var layers = new LayerRange((int)stage.LayerStart, (int)stage.LayerEnd);
            var nextStage = stages.Count > 1 ? stages[(index + 1) % stages.Count] : null;
            var nextEndpoint = nextStage?.GrpcEndpoint;
            var loaded = old?.Loaded.Layers == layers ? old.Loaded : null;
            var next = nextEndpoint is not null && old?.Next?.Endpoint == nextEndpoint ? old.Next : null;
            // What is not reused goes before the new layers load: a node sized for one range has no room for two.
            await ReleaseAsync(old, loaded, next);
            try
            {
                loaded ??= await LoadAsync(layers, cancellationToken);
                if (loaded.Stage.IsFirst != (index == 0) || loaded.Stage.IsLast != (index == stages.Count - 1))
                {
                    // A ring whose ends are not the model's ends would send hidden states nowhere: refuse to serve it.
                    throw new InvalidOperationException(
                        $"placement v{placement.Version} makes layers {layers} stage {index + 1} of {stages.Count} of ring v{ring.Version}, which does not match the model's {loaded.Stage.Config.LayerCount} layers");
                }
            }
            catch
            {
                // Nothing is left half-loaded, and the version stays unapplied so the same placement sent again is retried.
                if (loaded is not null) await DisposeAsync(loaded);
                if (next is not null) await next.DisposeAsync();
                throw;
            }

            loaded.Runtime.RingStages = stages.Count;
            next ??= nextStage is null ? null : new ForwardLink(nextStage.GrpcEndpoint, secret, onReply, e =>
            {
                LogLinkBroken(nextStage.GrpcEndpoint, e.Message);
                onNextLost(new PeerLoss(nextStage.NodeId, nextStage.GrpcEndpoint, e.Message));
            });
            _serving = new Serving((long)ring.Version, loaded, next, index == 0, index == stages.Count - 1);
            Interlocked.Exchange(ref _version, (long)placement.Version);
            LogServing(modelId, layers.ToString(), ring.Version, placement.Version, index + 1, stages.Count, nextEndpoint ?? "itself");
        }
        finally
        {
            _applying.Release();
        }
    }

    private async Task<Loaded> LoadAsync(LayerRange layers, CancellationToken cancellationToken)
    {
        var directory = await files.FolderForAsync(layers, cancellationToken);
        LogLoading(modelId, layers.ToString(), directory);
        var started = time.GetTimestamp();
        // One task, so no cancellation can come between loading the layers and owning them.
        var (stage, grammars) = await Task.Run(() =>
        {
            var model = StageLoader.Load(directory, layers, backend);
            return (model, model.IsLast ? Grammars(directory) : null);
        }, cancellationToken);
        var loaded = new Loaded(layers, stage, new StageRuntime(stage, kvBudgetBytes, grammars));
        loaded.Pump = Task.Run(() => PumpAsync(loaded), CancellationToken.None);
        LogLoaded(modelId, layers.ToString(), stage.Backend, time.GetElapsedTime(started).TotalSeconds);
        return loaded;
    }

    /// <summary>The last stage constrains output over the model's vocabulary; without a tokenizer it serves free text only.</summary>
    private OutputGrammars? Grammars(string directory)
    {
        try
        {
            return new OutputGrammars(TokenVocabulary.FromTokenizer(Tokenizer.FromModelDirectory(directory)));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogNoTokenizer(modelId, e.Message);
            return null;
        }
    }

    /// <summary>Hands each of the runtime's results on, until the runtime is disposed.</summary>
    private async Task PumpAsync(Loaded loaded)
    {
        await foreach (var result in loaded.Runtime.Results.ReadAllAsync()) onResult(loaded, result);
    }

    private static async Task ReleaseAsync(Serving? old, Loaded? keepLoaded, ForwardLink? keepLink)
    {
        if (old is null) return;
        if (old.Next is not null && old.Next != keepLink) await old.Next.DisposeAsync();
        if (old.Loaded != keepLoaded) await DisposeAsync(old.Loaded);
    }

    private static async Task DisposeAsync(Loaded loaded)
    {
        await loaded.Runtime.DisposeAsync();
        await loaded.Pump;
        loaded.Stage.Dispose();
    }

    public ShardStatus Status()
    {
        var serving = _serving;
        return new ShardStatus
        {
            NodeId = nodeId,
            ModelId = modelId,
            LayerStart = (uint)(serving?.Loaded.Layers.Start ?? 0),
            LayerEnd = (uint)(serving?.Loaded.Layers.End ?? 0),
            PlacementVersion = (ulong)(serving?.Version ?? 0),
            ActiveRequests = (uint)(serving?.Loaded.Runtime.ActiveRequests ?? 0),
            KvCacheBytes = (ulong)(serving?.Loaded.Runtime.KvBytesInUse ?? 0),
            KvCacheFreeTokens = (ulong)(serving?.Loaded.Runtime.FreeTokens ?? 0),
            KvCacheCapacityTokens = (ulong)(serving?.Loaded.Runtime.CapacityTokens ?? 0),
            Ready = serving is not null,
            FetchedBytes = (ulong)(files.Fetching?.Done ?? 0),
            FetchTotalBytes = (ulong)(files.Fetching?.Total ?? 0),
        };
    }

    /// <summary>What this stage holds now, for its metrics; null while it serves no placement.</summary>
    public StageLoad? Load() => _serving is { } serving
        ? new StageLoad(serving.Loaded.LayersText, serving.Loaded.Runtime.KvBytesInUse, kvBudgetBytes, serving.Loaded.Runtime.ActiveRequests)
        : null;

    public async ValueTask DisposeAsync()
    {
        await _applying.WaitAsync();
        var old = _serving;
        _serving = null;
        await ReleaseAsync(old, null, null);
        _applying.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Loading {Model} layers {Layers} from {Directory}")]
    private partial void LogLoading(string model, string layers, string directory);

    [LoggerMessage(Level = LogLevel.Information, Message = "Loaded {Model} layers {Layers} on {Backend} in {Seconds:0.00} s")]
    private partial void LogLoaded(string model, string layers, string backend, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Serving {Model} layers {Layers} for ring v{Version} (placement v{PlacementVersion}): stage {Index} of {Count}, next stage {Next}")]
    private partial void LogServing(string model, string layers, ulong version, ulong placementVersion, int index, int count, string next);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Model}'s last stage cannot read the model's tokenizer ({Reason}): requests with a JSON format or a forced tool call will fail here")]
    private partial void LogNoTokenizer(string model, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Placement v{Version} of {Model} does not include this node; its layers are unloaded")]
    private partial void LogNotPlaced(string model, ulong version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The stream to the next stage {Endpoint} broke ({Reason}); reconnecting")]
    private partial void LogLinkBroken(string endpoint, string reason);
}
