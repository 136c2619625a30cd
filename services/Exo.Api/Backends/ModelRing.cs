using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Exo.Contracts;
using Exo.Contracts.V1;
using Exo.Ring;
using Grpc.Core;

namespace Exo.Api.Backends;

/// <summary>
/// One ring (replica) of one model, at one ring version: the stream to its first stage, the requests waiting for
/// tokens on it, and the stages' status, polled until all have loaded their layers (then more slowly, for the cluster
/// view). It lives as long as the planner keeps its ring version, across placements that change other rings.
/// </summary>
internal sealed partial class ModelRing : IRingLoad, IAsyncDisposable
{
    private readonly Func<string, Shard.ShardClient> _shards;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, Channel<RingPayload>> _requests = new(StringComparer.Ordinal);
    private readonly ForwardLink _first;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ShardStatus?[] _statuses;
    private readonly Task _probe;
    private readonly Lock _gate = new();
    private readonly PeerReports _peers;
    private volatile bool _ready;
    private volatile bool _lost;
    private volatile bool _hasServed;
    private long _silentSince;
    private volatile KvRoom? _room;
    private bool _disposed;

    /// <param name="shards">The client for a stage's endpoint, shared by every ring.</param>
    /// <param name="peers">Where a stage that stops answering is reported.</param>
    public ModelRing(string modelId, Contracts.V1.Ring ring, Func<string, Shard.ShardClient> shards, ClusterSecret secret, PeerReports peers, ILogger logger)
    {
        ModelId = modelId;
        Version = ring.Version;
        Stages = ring.Stages;
        _shards = shards;
        _peers = peers;
        _logger = logger;
        _statuses = new ShardStatus?[Stages.Count];
        var first = Stages[0];
        _first = new ForwardLink(first.GrpcEndpoint, secret, Dispatch, e =>
        {
            LogLinkBroken(first.GrpcEndpoint, e.Message);
            // Not ready until the next probe finds every stage again: an idle broken ring must not win the least loaded choice.
            _ready = false;
            _peers.Lost(new PeerLoss(first.NodeId, first.GrpcEndpoint, e.Message));
            // The first stage dropped this gateway's requests with the stream: waiting for their tokens is pointless.
            FailAll(RingErrorCode.NotReady, $"the stream to the first stage {first.GrpcEndpoint} broke ({e.Message})");
        });

        _probe = Task.Run(ProbeAsync);
    }

    public string ModelId { get; }

    /// <summary>The ring's version, which every request sent on it carries.</summary>
    public ulong Version { get; }

    public IReadOnlyList<Stage> Stages { get; }

    /// <summary>The requests this API has open on the ring: how loaded it is, as far as this API can tell.</summary>
    public int OpenRequests => _requests.Count;

    public bool Ready => _ready && !_lost;

    /// <summary>Whether every stage has been ready at some time (the ring may have lost one since).</summary>
    public bool HasServed => _hasServed;

    /// <summary>The registry removed a node: if it held a stage here, the requests on this ring have lost it.</summary>
    public void MemberLeft(string nodeId)
    {
        if (Stages.All(s => s.NodeId != nodeId)) return;
        _lost = true;
        _ready = false;
        FailAll(RingErrorCode.NotReady, $"worker {nodeId} left the cluster");
    }

    /// <summary>A node of this ring registered again: once every stage reports ready, the ring serves again.</summary>
    public void MemberBack(string nodeId)
    {
        if (Stages.Any(s => s.NodeId == nodeId)) _lost = false;
    }

    /// <summary>The KV cache the stages had left at the last round of status polls; null unless every stage serves.</summary>
    public KvRoom? Room => _room;

    /// <summary>Registers a request for replies; null once the ring is being replaced.</summary>
    public ChannelReader<RingPayload>? Open(string id)
    {
        var channel = Channel.CreateUnbounded<RingPayload>(new() { SingleReader = true });
        lock (_gate)
        {
            if (_disposed) return null;
            _requests[id] = channel;
        }

        return channel.Reader;
    }

    private void FailAll(RingErrorCode code, string message)
    {
        var error = new RingError(code, message);
        foreach (var channel in _requests.Values) channel.Writer.TryWrite(error);
    }

    public void Send(RingMessage message) => _first.Post(message);

    public void Close(string id) => _requests.TryRemove(id, out _);

    private void Dispatch(ForwardMessage wire)
    {
        var id = RingCodec.ReadHeader(wire).RequestId;
        if (!_requests.TryGetValue(id, out var channel)) return;
        RingPayload reply;
        try
        {
            reply = RingCodec.Decode(wire, RingLimits.Unknown).Payload;
        }
        catch (RingMessageException e)
        {
            reply = new RingError(RingErrorCode.Failed, $"the first stage sent a malformed reply: {e.Message}");
        }

        channel.Writer.TryWrite(reply);
    }

    private async Task ProbeAsync()
    {
        var stopping = _stopping.Token;
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                var sampled = Stopwatch.GetTimestamp();
                for (var i = 0; i < _statuses.Length; i++) _statuses[i] = await StatusAsync(Stages[i].GrpcEndpoint, stopping);
                var ready = !_lost && _statuses.Length > 0 && _statuses.All(s => s is { Ready: true } && s.PlacementVersion == Version);
                Watch(Array.FindIndex(_statuses, s => s is null));
                _room = ready ? new KvRoom(_statuses.Min(s => (long)s!.KvCacheFreeTokens), _statuses.Min(s => (long)s!.KvCacheCapacityTokens), sampled) : null;
                if (ready && !_ready) LogReady(ModelId, Version);
                _ready = ready;
                _hasServed |= ready;
                await Task.Delay(ready ? TimeSpan.FromSeconds(2) : TimeSpan.FromMilliseconds(200), stopping);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// Follows the stages' answers to the status polls of a ring that has served. A stage that stops answering is reported
    /// to the registry at once (a killed stage that no peer streams to is found this way); its requests fail (to be resumed)
    /// only when it stays silent for <see cref="SilencePatience"/>, so a busy stage that answers late keeps them, and a
    /// removal the registry could not make, or the API missed, still ends them.
    /// </summary>
    private void Watch(int silent)
    {
        if (silent < 0 || !_hasServed || _lost)
        {
            _silentSince = 0;
            return;
        }

        var stage = Stages[silent];
        if (_silentSince == 0)
        {
            _silentSince = Stopwatch.GetTimestamp();
            LogStageSilent(stage.NodeId, stage.GrpcEndpoint);
            _peers.Lost(new PeerLoss(stage.NodeId, stage.GrpcEndpoint, "it did not answer a status request"));
        }
        else if (Stopwatch.GetElapsedTime(_silentSince) >= SilencePatience)
        {
            FailAll(RingErrorCode.NotReady, $"worker {stage.NodeId} at {stage.GrpcEndpoint} has not answered for {SilencePatience.TotalSeconds:0} s");
        }
    }

    private static readonly TimeSpan SilencePatience = TimeSpan.FromSeconds(2);

    private async Task<ShardStatus?> StatusAsync(string endpoint, CancellationToken cancellationToken)
    {
        try
        {
            return await _shards(endpoint).StatusAsync(new ShardStatusRequest { ModelId = ModelId },
                new CallOptions(deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: cancellationToken));
        }
        catch (Exception e) when (e is RpcException or HttpRequestException or IOException)
        {
            return null;
        }
    }

    public RingView Describe() => new((long)Version, Ready, OpenRequests, Stages.Select((s, i) => Stage(s, _statuses[i])).ToList());

    private static StageView Stage(Stage stage, ShardStatus? status) => new(stage.NodeId, stage.GrpcEndpoint, (int)stage.LayerStart, (int)stage.LayerEnd,
        (int)(status?.ActiveRequests ?? 0), (long)(status?.FetchedBytes ?? 0), (long)(status?.FetchTotalBytes ?? 0));

    public async ValueTask DisposeAsync()
    {
        _ready = false;
        lock (_gate) _disposed = true;
        FailAll(RingErrorCode.StalePlacement,
            $"the cluster was re-planned while the request ran (ring v{Version} of '{ModelId}' was replaced); retry");
        await _stopping.CancelAsync();
        await _probe;
        await _first.DisposeAsync();
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Ring v{Version} of {Model} is loaded on every stage; serving")]
    private partial void LogReady(string model, ulong version);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Worker {NodeId} at {Endpoint} did not answer a status request; the registry checks it")]
    private partial void LogStageSilent(string nodeId, string endpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The stream to the first stage {Endpoint} broke ({Reason}); reconnecting")]
    private partial void LogLinkBroken(string endpoint, string reason);
}
