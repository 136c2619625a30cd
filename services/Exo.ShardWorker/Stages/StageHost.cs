using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using Exo.Contracts.V1;
using Exo.Inference;
using Exo.Inference.Model;
using Exo.Inference.Pipeline;
using Exo.Ring;

namespace Exo.ShardWorker.Stages;

/// <summary>
/// This node's part of one model's ring: the layers the current placement assigns it, the runtime that runs them for
/// every request, and the link to the next stage. The first stage takes prompts from gateways and relays each sampled
/// token back to the gateway that sent the request; the last stage samples. Errors travel on round the ring until they
/// reach the first stage, which tells the gateway.
/// </summary>
public sealed partial class StageHost(
    string modelId, string modelDirectory, string nodeId, long kvBudgetBytes, ActivitySource tracing, StageMetrics metrics, TimeProvider time, ILogger<StageHost> logger)
    : IAsyncDisposable
{
    /// <summary>A request untouched this long has lost its gateway; its KV cache is freed.</summary>
    public static readonly TimeSpan IdleRequestTimeout = TimeSpan.FromMinutes(2);

    private readonly ConcurrentDictionary<string, Route> _routes = new(StringComparer.Ordinal);

    // Cancels that arrived before the request did (its prefill still on its way here), with when they arrived.
    private readonly ConcurrentDictionary<string, long> _cancelledEarly = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _applying = new(1, 1);
    private volatile Serving? _serving;
    private long _version;

    /// <summary>Layers loaded in memory, with the runtime running them and the loop forwarding its results.</summary>
    private sealed record Loaded(LayerRange Layers, ModelStage Stage, StageRuntime Runtime)
    {
        public Task Pump { get; set; } = Task.CompletedTask;

        /// <summary>What every message for these layers is checked against.</summary>
        public RingLimits Limits { get; } = RingLimits.Of(Stage.Config);

        /// <summary>The layers as spans and metrics name them, made once rather than at every step.</summary>
        public string LayersText { get; } = Layers.ToString();
    }

    /// <summary>What this node serves for one placement version.</summary>
    private sealed record Serving(long Version, Loaded Loaded, ForwardLink? Next, bool IsFirst, bool IsLast);

    /// <summary>One open request on this stage.</summary>
    private sealed class Route(Loaded loaded, Outbox? gateway, RingSetup? setupToForward, StageTrace? trace, long now)
    {
        public Loaded Loaded { get; } = loaded;

        /// <summary>On the first stage, the gateway stream the request came on.</summary>
        public Outbox? Gateway { get; } = gateway;

        /// <summary>The setup still to send with the request's first message to the next stage.</summary>
        public RingSetup? SetupToForward { get; set; } = setupToForward;

        /// <summary>Position of the next rows this stage expects.</summary>
        public int NextPosition { get; set; }

        /// <summary>Position of the rows in the runtime now; one step per request is in flight at a time.</summary>
        public int PendingPosition { get; set; }

        /// <summary>How many rows that step runs, and when it went in.</summary>
        public int PendingRows { get; set; }

        public long PendingSince { get; set; }

        public long LastActive { get; set; } = now;

        /// <summary>This stage's spans of the request, when it is traced.</summary>
        public StageTrace? Trace { get; } = trace;
    }

    public string ModelId => modelId;

    /// <summary>Follows a new placement: loads the assigned layers (reusing those already loaded), links the next stage, and
    /// fails requests of the previous placement, whose ring no longer exists.</summary>
    public async Task ApplyAsync(Placement placement, CancellationToken cancellationToken)
    {
        await _applying.WaitAsync(cancellationToken);
        try
        {
            if ((long)placement.Version <= Interlocked.Read(ref _version)) return;
            var old = _serving;
            _serving = null;
            FailAll(RingErrorCode.StalePlacement, $"the cluster was re-planned (placement v{placement.Version}); retry the request");

            var index = placement.Stages.ToList().FindIndex(s => s.NodeId == nodeId);
            if (index < 0)
            {
                await ReleaseAsync(old, keepLoaded: null, keepLink: null);
                Interlocked.Exchange(ref _version, (long)placement.Version);
                LogNotPlaced(modelId, placement.Version);
                return;
            }

            var stage = placement.Stages[index];
            var layers = new LayerRange((int)stage.LayerStart, (int)stage.LayerEnd);
            var nextEndpoint = placement.Stages.Count > 1 ? placement.Stages[(index + 1) % placement.Stages.Count].GrpcEndpoint : null;
            var loaded = old?.Loaded.Layers == layers ? old.Loaded : null;
            var next = nextEndpoint is not null && old?.Next?.Endpoint == nextEndpoint ? old.Next : null;
            // What is not reused goes before the new layers load: a node sized for one range has no room for two.
            await ReleaseAsync(old, loaded, next);
            try
            {
                loaded ??= await LoadAsync(layers, cancellationToken);
                if (loaded.Stage.IsFirst != (index == 0) || loaded.Stage.IsLast != (index == placement.Stages.Count - 1))
                {
                    // A ring whose ends are not the model's ends would send hidden states nowhere: refuse to serve it.
                    throw new InvalidOperationException(
                        $"placement v{placement.Version} makes layers {layers} stage {index + 1} of {placement.Stages.Count}, which does not match the model's {loaded.Stage.Config.LayerCount} layers");
                }
            }
            catch
            {
                // Nothing is left half-loaded, and the version stays unapplied so the same placement sent again is retried.
                if (loaded is not null) await DisposeAsync(loaded);
                if (next is not null) await next.DisposeAsync();
                throw;
            }

            next ??= nextEndpoint is null ? null
                : new ForwardLink(nextEndpoint, message => Receive(message, origin: null), e => LogLinkBroken(nextEndpoint, e.Message));
            _serving = new Serving((long)placement.Version, loaded, next, index == 0, index == placement.Stages.Count - 1);
            Interlocked.Exchange(ref _version, (long)placement.Version);
            LogServing(modelId, layers.ToString(), placement.Version, index + 1, placement.Stages.Count, nextEndpoint ?? "itself");
        }
        finally
        {
            _applying.Release();
        }
    }

    private async Task<Loaded> LoadAsync(LayerRange layers, CancellationToken cancellationToken)
    {
        LogLoading(modelId, layers.ToString(), modelDirectory);
        var started = time.GetTimestamp();
        var stage = await Task.Run(() => ModelStage.Load(modelDirectory, layers), cancellationToken);
        var loaded = new Loaded(layers, stage, new StageRuntime(stage, kvBudgetBytes));
        loaded.Pump = Task.Run(() => PumpAsync(loaded), CancellationToken.None);
        LogLoaded(modelId, layers.ToString(), time.GetElapsedTime(started).TotalSeconds);
        return loaded;
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

    /// <summary>Acts on one message from a gateway, the previous stage, or (first stage) the last stage's sampled token.</summary>
    /// <param name="origin">Where to answer when the request cannot be routed; null for replies on this node's own link.</param>
    public void Receive(ForwardMessage wire, Outbox? origin)
    {
        var header = RingCodec.ReadHeader(wire);
        var id = header.RequestId;
        if (header.Kind == RingPayloadKind.Error)
        {
            Relay(wire, id);
            return;
        }

        var serving = _serving;
        if (serving is null)
        {
            Fail(id, RingErrorCode.NotReady, $"node {nodeId} is not serving {modelId} yet (placement v{Interlocked.Read(ref _version)} is loading or does not include it)", origin);
            return;
        }

        if ((long)header.PlacementVersion != serving.Version)
        {
            Fail(id, RingErrorCode.StalePlacement, $"node {nodeId} serves placement v{serving.Version} of {modelId}, the request was sent for v{header.PlacementVersion}; retry", origin);
            return;
        }

        try
        {
            Handle(wire, header, serving, origin);
        }
        catch (Exception e) when (e is RingMessageException or ArgumentException or ObjectDisposedException)
        {
            Fail(id, RingErrorCode.Failed, e.Message, origin);
        }
        catch (StageCapacityException e)
        {
            Fail(id, RingErrorCode.Capacity, e.Message, origin);
        }
    }

    /// <summary>Passes an error on towards the gateway. One for a request this stage no longer holds has already been
    /// delivered: dropping it ends the relay.</summary>
    private void Relay(ForwardMessage wire, string id)
    {
        if (!End(id, out var failed)) return;
        RingMessage error;
        try
        {
            error = RingCodec.Decode(wire, failed.Loaded.Limits);
        }
        catch (RingMessageException e)
        {
            // The request has failed whatever the error said; what was wrong with it is the best account left.
            error = RingMessage.Failure(id, RingErrorCode.Failed, $"a malformed error came round the ring: {e.Message}");
        }

        Deliver(failed, _serving, error);
    }

    private void Handle(ForwardMessage wire, RingHeader header, Serving serving, Outbox? origin)
    {
        var id = header.RequestId;
        var loaded = serving.Loaded;
        // Cancelled while the prefill travelled here: opening it now would hold its KV cache until the idle sweep.
        if (header.ModelId is not null && _cancelledEarly.TryRemove(id, out _)) return;
        Route? open = null;
        if (header.ModelId is null && (!_routes.TryGetValue(id, out open) || open.Loaded != loaded))
            throw new RingMessageException($"request '{id}' is not open on node {nodeId} (finished, cancelled, or the node restarted)");
        if (!Takes(serving, header.Kind))
            throw new RingMessageException($"stage {loaded.Layers} ({(serving.IsFirst ? "first" : serving.IsLast ? "last" : "middle")}) does not take {header.Kind} messages");

        var message = RingCodec.Decode(wire, loaded.Limits);
        var route = open ?? Open(message, serving, origin);
        lock (route)
        {
            route.LastActive = time.GetTimestamp();
            switch (message.Payload)
            {
                case RingSampledToken sampled:
                    OnSampled(route, message, sampled);
                    return;
                case RingTokens tokens:
                    CheckPosition(message, route);
                    Submit(route, new StageWork(id, tokens.Ids, null, tokens.Ids.Length));
                    return;
                case RingHiddenStates hidden:
                    CheckPosition(message, route);
                    Submit(route, new StageWork(id, null, hidden.Values, hidden.Rows));
                    return;
            }
        }
    }

    /// <summary>The gateway's prompts go to the first stage, hidden states to every other; sampled tokens come round to
    /// a first stage that does not sample itself.</summary>
    private static bool Takes(Serving serving, RingPayloadKind kind) => kind switch
    {
        RingPayloadKind.Tokens => serving.IsFirst,
        RingPayloadKind.HiddenStates => !serving.IsFirst,
        RingPayloadKind.Sampled => serving.IsFirst && !serving.IsLast,
        _ => false,
    };

    /// <summary>Admits a request on its first message, whose setup says what it needs.</summary>
    private Route Open(RingMessage message, Serving serving, Outbox? origin)
    {
        var id = message.RequestId;
        var setup = message.Setup ?? throw new RingMessageException($"request '{id}' is not open on node {nodeId}, and the message has no setup to open it");
        if (setup.ModelId != modelId) throw new RingMessageException($"the request is for model '{setup.ModelId}', this stage runs '{modelId}'");
        var trace = tracing.HasListeners() && ActivityContext.TryParse(setup.Traceparent, null, out var parent)
            && parent.TraceFlags.HasFlag(ActivityTraceFlags.Recorded)
            ? new StageTrace(tracing, parent, id, serving.Loaded.LayersText, time)
            : null;
        var route = new Route(serving.Loaded, serving.IsFirst ? origin : null, serving.IsLast ? null : setup, trace, time.GetTimestamp());
        if (!_routes.TryAdd(id, route)) throw new RingMessageException($"request '{id}' is already open on node {nodeId}");
        try
        {
            serving.Loaded.Runtime.Open(id, setup.Options);
        }
        catch
        {
            _routes.TryRemove(id, out _);
            throw;
        }

        return route;
    }

    private static void CheckPosition(RingMessage message, Route route)
    {
        if (message.Position != route.NextPosition)
            throw new RingMessageException($"rows at position {message.Position}, but this stage expects position {route.NextPosition}: a message was lost or repeated");
    }

    private void Submit(Route route, StageWork work)
    {
        route.PendingPosition = route.NextPosition;
        route.NextPosition += work.Rows;
        (route.PendingRows, route.PendingSince) = (work.Rows, time.GetTimestamp());
        route.Trace?.Began(route.PendingPosition, work.Rows, route.Loaded.Runtime.ActiveRequests);
        route.Loaded.Runtime.Submit(work);
    }

    /// <summary>First stage: passes a sampled token to the gateway and, unless it ends the request, feeds it back in.</summary>
    private void OnSampled(Route route, RingMessage message, RingSampledToken sampled)
    {
        var id = message.RequestId;
        if (sampled.Finish is not null || route.Gateway is null)
        {
            // Ended before the gateway hears of it: a reader that reopens the id, or checks the cache, finds it free.
            End(id, out _);
            route.Gateway?.Post(message);
            return;
        }

        route.Gateway.Post(message);
        Submit(route, new StageWork(id, [sampled.Token], null, 1));
    }

    /// <summary>Forwards what the runtime produced: hidden states to the next stage, sampled tokens round to the first.</summary>
    private async Task PumpAsync(Loaded loaded)
    {
        await foreach (var result in loaded.Runtime.Results.ReadAllAsync())
        {
            var serving = _serving;
            if (!_routes.TryGetValue(result.RequestId, out var route) || route.Loaded != loaded || serving?.Loaded != loaded) continue;
            try
            {
                Forward(result, route, serving);
            }
            catch (Exception e) when (e is ArgumentException or ObjectDisposedException)
            {
                Fail(result.RequestId, RingErrorCode.Failed, e.Message, origin: null);
            }
        }
    }

    private void Forward(StageResult result, Route route, Serving serving)
    {
        var id = result.RequestId;
        lock (route)
        {
            route.LastActive = time.GetTimestamp();
            metrics.Step(modelId, route.Loaded.LayersText, route.PendingRows, time.GetElapsedTime(route.PendingSince, route.LastActive));
            route.Trace?.Ended();
            var version = (ulong)serving.Version;
            switch (result)
            {
                case HiddenResult hidden:
                    var rows = new RingHiddenStates(hidden.Hidden, hidden.Rows, serving.Loaded.Stage.Config.HiddenSize);
                    serving.Next!.Post(new RingMessage(id, version, route.PendingPosition, rows, route.SetupToForward));
                    route.SetupToForward = null;
                    break;
                case TokenResult token:
                    var sampled = new RingSampledToken(token.Token, token.Index, token.Finish, token.Logprobs);
                    var message = new RingMessage(id, version, route.PendingPosition, sampled);
                    if (serving.IsFirst)
                    {
                        OnSampled(route, message, sampled);
                    }
                    else
                    {
                        // The runtime freed the request when it finished; the first stage frees its own on the token.
                        if (token.Finish is not null) End(id, out _);
                        serving.Next!.Post(message);
                    }

                    break;
                case FailedResult failed:
                    Fail(id, RingErrorCode.Failed, failed.Error, origin: null);
                    break;
            }
        }
    }

    /// <summary>Ends a request on this stage: its route, its spans and its KV cache (closing one the runtime already freed is harmless).</summary>
    private bool End(string id, [NotNullWhen(true)] out Route? route)
    {
        if (!_routes.TryRemove(id, out route)) return false;
        // Under the route's lock, as its result loop's steps are: a step ending now cannot reopen a span after this.
        lock (route) route.Trace?.Dispose();
        route.Loaded.Runtime.Close(id);
        return true;
    }

    /// <summary>Ends a request on this stage and sends the error towards its gateway.</summary>
    private void Fail(string id, RingErrorCode code, string text, Outbox? origin)
    {
        LogRequestFailed(id, code.ToString(), text);
        var error = RingMessage.Failure(id, code, text);
        if (End(id, out var route))
        {
            if (Deliver(route, _serving, error)) return;
        }

        origin?.Post(error);
    }

    /// <summary>To the gateway (first stage) or on round the ring; false when neither is possible.</summary>
    private static bool Deliver(Route route, Serving? serving, RingMessage error)
    {
        if (route.Gateway is { } gateway)
        {
            gateway.Post(error);
            return true;
        }

        if (serving is { IsFirst: false, Next: { } next } && serving.Loaded == route.Loaded)
        {
            next.Post(error);
            return true;
        }

        return false;
    }

    private void FailAll(RingErrorCode code, string text)
    {
        foreach (var id in _routes.Keys) Fail(id, code, text, origin: null);
    }

    /// <summary>Frees a request's KV cache (the gateway cancels on finish or client disconnect).</summary>
    public bool Cancel(string requestId)
    {
        if (End(requestId, out _)) return true;
        _cancelledEarly[requestId] = time.GetTimestamp();
        return false;
    }

    /// <summary>Frees requests whose gateway went away without cancelling them, and those of a gateway stream that ended.</summary>
    public void Sweep(Outbox? closedGateway = null)
    {
        foreach (var (id, at) in _cancelledEarly)
        {
            if (time.GetElapsedTime(at) > IdleRequestTimeout) _cancelledEarly.TryRemove(id, out _);
        }

        foreach (var (id, route) in _routes)
        {
            if (route.Gateway == closedGateway && closedGateway is not null || time.GetElapsedTime(route.LastActive) > IdleRequestTimeout)
                Cancel(id);
        }
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
            Ready = serving is not null,
        };
    }

    public bool Holds(string requestId) => _routes.ContainsKey(requestId);

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

    [LoggerMessage(Level = LogLevel.Information, Message = "Loaded {Model} layers {Layers} in {Seconds:0.00} s")]
    private partial void LogLoaded(string model, string layers, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Serving {Model} layers {Layers} for placement v{Version}: stage {Index} of {Count}, next stage {Next}")]
    private partial void LogServing(string model, string layers, ulong version, int index, int count, string next);

    [LoggerMessage(Level = LogLevel.Information, Message = "Placement v{Version} of {Model} does not include this node; its layers are unloaded")]
    private partial void LogNotPlaced(string model, ulong version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The stream to the next stage {Endpoint} broke ({Reason}); reconnecting")]
    private partial void LogLinkBroken(string endpoint, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Request {RequestId} failed here ({Code}): {Reason}")]
    private partial void LogRequestFailed(string requestId, string code, string reason);
}
