using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using Exo.Contracts;
using Exo.Contracts.V1;
using Exo.Inference.Backends;
using Exo.Inference.Pipeline;
using Exo.Ring;
using Exo.ShardWorker.Models;

namespace Exo.ShardWorker.Stages;

/// <summary>
/// Routes the requests of this node's part of one model's ring through the layers its <see cref="StagePlacement"/> serves.
/// The first stage takes prompts from gateways and relays each sampled token back to the gateway that sent the request;
/// the last stage samples. Errors travel on round the ring until they reach the first stage, which tells the gateway;
/// one the next stage sends back (it never opened the request, so the stages after it cannot carry it) goes back the way
/// the request came.
/// </summary>
public sealed partial class StageHost : IAsyncDisposable
{
    /// <summary>A request untouched this long has lost its gateway; its KV cache is freed.</summary>
    public static readonly TimeSpan IdleRequestTimeout = TimeSpan.FromMinutes(2);

    private readonly string _modelId;
    private readonly string _nodeId;
    private readonly ActivitySource _tracing;
    private readonly StageMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger<StageHost> _logger;
    private readonly StagePlacement _placement;
    private readonly ConcurrentDictionary<string, Route> _routes = new(StringComparer.Ordinal);

    // Cancels that arrived before the request did (its prefill still on its way here), with when they arrived.
    private readonly ConcurrentDictionary<string, long> _cancelledEarly = new(StringComparer.Ordinal);

    public StageHost(
        string modelId, IStageFiles files, string nodeId, BackendOptions backend, long kvBudgetBytes, ClusterSecret secret, ActivitySource tracing, StageMetrics metrics, TimeProvider time,
        ILogger<StageHost> logger, Action<PeerLoss> onPeerLost)
    {
        (_modelId, _nodeId, _tracing, _metrics, _time, _logger) = (modelId, nodeId, tracing, metrics, time, logger);
        _placement = new StagePlacement(modelId, files, nodeId, backend, kvBudgetBytes, secret, time, logger,
            onReply: message => Receive(message, origin: null),
            onResult: OnResult,
            onReplaced: version => FailAll(RingErrorCode.StalePlacement, $"the cluster was re-planned (placement v{version}); retry the request"),
            onNextLost: onPeerLost);
    }

    /// <summary>One open request on this stage.</summary>
    private sealed class Route(StagePlacement.Loaded loaded, Outbox? origin, bool first, RingSetup? setupToForward, StageTrace? trace, long now)
    {
        public StagePlacement.Loaded Loaded { get; } = loaded;

        /// <summary>The stream the request came on: the gateway's, or the previous stage's.</summary>
        public Outbox? Origin { get; } = origin;

        /// <summary>On the first stage, the gateway stream the request came on.</summary>
        public Outbox? Gateway => first ? Origin : null;

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

    public string ModelId => _modelId;

    /// <summary>Follows a new placement; requests of the previous one fail, as their ring no longer exists.</summary>
    public Task ApplyAsync(Placement placement, CancellationToken cancellationToken) => _placement.ApplyAsync(placement, cancellationToken);

    /// <summary>Acts on one message from a gateway, the previous stage, or (first stage) the last stage's sampled token.</summary>
    /// <param name="origin">Where to answer when the request cannot be routed; null for replies on this node's own link.</param>
    public void Receive(ForwardMessage wire, Outbox? origin)
    {
        var header = RingCodec.ReadHeader(wire);
        var id = header.RequestId;
        if (header.Kind == RingPayloadKind.Error)
        {
            Relay(wire, id, back: origin is null);
            return;
        }

        var serving = _placement.Current;
        if (serving is null)
        {
            Fail(id, RingErrorCode.NotReady, $"node {_nodeId} is not serving {_modelId} yet (placement v{_placement.Version} is loading or does not include it)", origin);
            return;
        }

        if ((long)header.PlacementVersion != serving.Version)
        {
            Fail(id, RingErrorCode.StalePlacement, $"node {_nodeId} serves ring v{serving.Version} of {_modelId}, the request was sent for ring v{header.PlacementVersion}; retry", origin);
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

    /// <summary>Passes an error on towards the gateway, <paramref name="back"/> the way the request came when the next stage
    /// sent it back. One for a request this stage no longer holds has already been delivered: dropping it ends the relay.</summary>
    private void Relay(ForwardMessage wire, string id, bool back)
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

        if (back) failed.Origin?.Post(error);
        else Deliver(failed, _placement.Current, error);
    }

    private void Handle(ForwardMessage wire, RingHeader header, StagePlacement.Serving serving, Outbox? origin)
    {
        var id = header.RequestId;
        var loaded = serving.Loaded;
        // Cancelled while the prefill travelled here: opening it now would hold its KV cache until the idle sweep.
        if (header.ModelId is not null && _cancelledEarly.TryRemove(id, out _)) return;
        Route? open = null;
        if (header.ModelId is null && (!_routes.TryGetValue(id, out open) || open.Loaded != loaded))
            throw new RingMessageException($"request '{id}' is not open on node {_nodeId} (finished, cancelled, or the node restarted)");
        if (!Takes(serving, header.Kind))
            throw new RingMessageException($"stage {loaded.Layers} ({(serving.IsFirst ? "first" : serving.IsLast ? "last" : "middle")}) does not take {header.Kind} messages");

        var message = RingCodec.Decode(wire, loaded.Limits);
        var route = open ?? Open(message, serving, origin);
        lock (route)
        {
            route.LastActive = _time.GetTimestamp();
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
    private static bool Takes(StagePlacement.Serving serving, RingPayloadKind kind) => kind switch
    {
        RingPayloadKind.Tokens => serving.IsFirst,
        RingPayloadKind.HiddenStates => !serving.IsFirst,
        RingPayloadKind.Sampled => serving.IsFirst && !serving.IsLast,
        _ => false,
    };

    /// <summary>Admits a request on its first message, whose setup says what it needs.</summary>
    private Route Open(RingMessage message, StagePlacement.Serving serving, Outbox? origin)
    {
        var id = message.RequestId;
        var setup = message.Setup ?? throw new RingMessageException($"request '{id}' is not open on node {_nodeId}, and the message has no setup to open it");
        if (setup.ModelId != _modelId) throw new RingMessageException($"the request is for model '{setup.ModelId}', this stage runs '{_modelId}'");
        var trace = _tracing.HasListeners() && ActivityContext.TryParse(setup.Traceparent, null, out var parent)
            && parent.TraceFlags.HasFlag(ActivityTraceFlags.Recorded)
            ? new StageTrace(_tracing, parent, id, serving.Loaded.LayersText, _time)
            : null;
        var route = new Route(serving.Loaded, origin, serving.IsFirst, serving.IsLast ? null : setup, trace, _time.GetTimestamp());
        if (!_routes.TryAdd(id, route)) throw new RingMessageException($"request '{id}' is already open on node {_nodeId}");
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
        (route.PendingRows, route.PendingSince) = (work.Rows, _time.GetTimestamp());
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
    private void OnResult(StagePlacement.Loaded loaded, StageResult result)
    {
        var serving = _placement.Current;
        if (!_routes.TryGetValue(result.RequestId, out var route) || route.Loaded != loaded || serving?.Loaded != loaded) return;
        try
        {
            Forward(result, route, serving);
        }
        catch (Exception e) when (e is ArgumentException or ObjectDisposedException)
        {
            Fail(result.RequestId, RingErrorCode.Failed, e.Message, origin: null);
        }
    }

    private void Forward(StageResult result, Route route, StagePlacement.Serving serving)
    {
        var id = result.RequestId;
        lock (route)
        {
            route.LastActive = _time.GetTimestamp();
            _metrics.Step(_modelId, route.Loaded.LayersText, route.PendingRows, _time.GetElapsedTime(route.PendingSince, route.LastActive));
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
            if (Deliver(route, _placement.Current, error)) return;
        }

        origin?.Post(error);
    }

    /// <summary>To the gateway (first stage) or on round the ring; false when neither is possible.</summary>
    private static bool Deliver(Route route, StagePlacement.Serving? serving, RingMessage error)
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
        _cancelledEarly[requestId] = _time.GetTimestamp();
        return false;
    }

    /// <summary>Frees requests whose gateway went away without cancelling them, and those of a gateway stream that ended.</summary>
    public void Sweep(Outbox? closedGateway = null)
    {
        foreach (var (id, at) in _cancelledEarly)
        {
            if (_time.GetElapsedTime(at) > IdleRequestTimeout) _cancelledEarly.TryRemove(id, out _);
        }

        foreach (var (id, route) in _routes)
        {
            if (route.Gateway == closedGateway && closedGateway is not null || _time.GetElapsedTime(route.LastActive) > IdleRequestTimeout)
                Cancel(id);
        }
    }

    public ShardStatus Status() => _placement.Status();

    public bool Holds(string requestId) => _routes.ContainsKey(requestId);

    /// <summary>What this stage holds now, for its metrics; null while it serves no placement.</summary>
    public StageLoad? Load() => _placement.Load();

    public ValueTask DisposeAsync() => _placement.DisposeAsync();

    [LoggerMessage(Level = LogLevel.Debug, Message = "Request {RequestId} failed here ({Code}): {Reason}")]
    private partial void LogRequestFailed(string requestId, string code, string reason);
}
