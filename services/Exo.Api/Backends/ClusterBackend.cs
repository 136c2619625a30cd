using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Exo.Contracts;
using Exo.Contracts.V1;
using Exo.Inference.Pipeline;
using Exo.Ring;
using Exo.ServiceDefaults;
using Grpc.Core;
using Grpc.Net.Client;

namespace Exo.Api.Backends;

/// <summary>
/// Runs prompts round the rings of shard workers that the planner placed each model on. It follows the planner's
/// placements and the registry's members, keeps a <see cref="ModelRing"/> for each ring of each model's current placement
/// (the one multiplexed stream to its first stage, which relays the sampled tokens back), kept across placements while
/// its ring version is unchanged, and runs each request on the least loaded ready ring; a request whose ring is lost
/// resumes on another. A ring is used only once every stage reports its layers loaded; until one is, requests get 503
/// with the reason.
/// </summary>
public sealed partial class ClusterBackend : IGenerationBackend, IAsyncDisposable
{
    private readonly Contracts.V1.Planner.PlannerClient _planner;
    private readonly Contracts.V1.Registry.RegistryClient _registry;
    private readonly ClusterSecret _secret;
    private readonly TimeSpan _tokenTimeout;
    private readonly TimeSpan _resumeTimeout;
    private readonly PeerReports _peers;
    private readonly ILogger<ClusterBackend> _logger;
    private readonly ConcurrentDictionary<string, ModelPlacement> _placements = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, NodeInfo> _nodes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Shard.ShardClient> _shards = new(StringComparer.Ordinal);

    // Models that have had a ready ring: a request for one waits out a re-plan instead of being told to retry.
    private readonly ConcurrentDictionary<string, bool> _served = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task[] _followers;

    // Whether the placement and membership watches are connected now: a request that lost its ring needs both.
    private volatile bool _plannerFollowed;
    private volatile bool _registryFollowed;

    public ClusterBackend(Contracts.V1.Planner.PlannerClient planner, Contracts.V1.Registry.RegistryClient registry, ClusterSecret secret, TimeSpan tokenTimeout,
        TimeSpan resumeTimeout, ILogger<ClusterBackend> logger)
    {
        _planner = planner;
        _registry = registry;
        _secret = secret;
        _tokenTimeout = tokenTimeout;
        _resumeTimeout = resumeTimeout;
        _peers = new PeerReports(registry, TimeProvider.System);
        _logger = logger;
        // The first request that needs the backend creates it: without this its trace would adopt the watch streams, and
        // every ring link they open, for the life of the process.
        using (ExecutionContext.SuppressFlow())
        {
            _followers =
            [
                Task.Run(() => StreamFollowing.FollowAsync(FollowPlacementsAsync, e =>
                {
                    _plannerFollowed = false;
                    LogPlannerLost(e.Message);
                }, _stopping.Token)),
                Task.Run(() => StreamFollowing.FollowAsync(FollowMembersAsync, e =>
                {
                    _registryFollowed = false;
                    LogRegistryLost(e.Message);
                }, _stopping.Token)),
            ];
        }
    }

    public async IAsyncEnumerable<GenerationEvent> GenerateAsync(string model, GenerationRequest request,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!_placements.TryGetValue(model, out var placement))
            throw new BackendUnavailableException($"model '{model}' has no placement yet: the planner has not answered; check that Exo.Planner is running");
        if (placement.Problem is { } problem) throw new BackendUnavailableException($"model '{model}' cannot be served now: {problem}");
        // The KV positions the request takes on whichever ring runs it, resumed or not: prompt, sent and remaining tokens.
        var tokens = (long)request.Prompt.Length + request.MaxTokens;
        if (placement.LeastLoaded(tokens) is not { } ring)
        {
            // Loading for the first time takes a while: the client is told to come back. A re-plan takes about a second.
            if (!placement.HasServed && !_served.ContainsKey(model))
            {
                throw new BackendUnavailableException(
                    $"model '{model}' is loading on {placement.Rings.Sum(r => r.Stages.Count)} worker(s) (placement v{placement.Placement.Version}); retry in a few seconds");
            }

            ring = await ReadyRingAsync(model, tokens, null, $"'{model}' is being re-planned", cancellationToken);
        }

        // What the client has been sent: a lost ring is resumed from the prompt and these, so nothing is lost or repeated.
        var sent = new List<int>();
        var attempt = Start(ring, model, request, sent, cancellationToken);
        var resumed = 0;
        // While a resumed request finds the rings full: when that began, and the wait before the next try.
        var fullSince = 0L;
        var backOff = FullBackOff;
        try
        {
            while (true)
            {
                var reply = attempt.Replies is null
                    ? new RingError(RingErrorCode.StalePlacement, $"ring v{attempt.Ring.Version} of '{model}' was being replaced")
                    : await NextReplyAsync(attempt, model, cancellationToken);
                if (reply is RingError error)
                {
                    var lost = Stopwatch.GetTimestamp();
                    // The client has tokens already, so a full ring is waited out rather than reported; a fresh request hears.
                    if (error.Code == RingErrorCode.Capacity && resumed > 0)
                    {
                        fullSince = fullSince == 0 ? lost : fullSince;
                        if (Stopwatch.GetElapsedTime(fullSince) + backOff > _resumeTimeout) throw Failure(error);
                        Close(attempt, finished: false);
                        await Task.Delay(backOff, cancellationToken);
                        backOff = TimeSpan.FromTicks(Math.Min(backOff.Ticks * 2, FullBackOffLimit.Ticks));
                        ring = await ReadyRingAsync(model, tokens, null, $"'{model}' had no room to resume a request ({error.Message})", cancellationToken);
                        attempt = Start(ring, model, request, sent, cancellationToken);
                        continue;
                    }

                    if (!Resumable(error.Code) || ++resumed > MaxResumes) throw Failure(error);
                    Close(attempt, finished: false);
                    ring = await ReadyRingAsync(model, tokens, attempt.Ring, $"'{model}' lost its ring mid-answer ({error.Message})", cancellationToken);
                    attempt = Start(ring, model, request, sent, cancellationToken);
                    LogResumed(model, sent.Count, attempt.Ring.Version, Stopwatch.GetElapsedTime(lost).TotalSeconds, error.Message);
                    continue;
                }

                if (reply is not RingSampledToken sampled) continue;
                fullSince = 0;
                backOff = FullBackOff;
                sent.Add(sampled.Token);
                yield return new GenerationEvent(sampled.Token, sampled.Finish, sampled.Logprobs);
                if (sampled.Finish is not null)
                {
                    attempt.Finished = true;
                    yield break;
                }
            }
        }
        finally
        {
            Close(attempt, attempt.Finished);
        }
    }

    /// <summary>How many times one request may move to another ring: enough for a few machines leaving one after another.</summary>
    private const int MaxResumes = 8;

    /// <summary>The first and the longest wait before a resumed request that found the rings full tries again.</summary>
    private static readonly TimeSpan FullBackOff = TimeSpan.FromMilliseconds(200);

    private static readonly TimeSpan FullBackOffLimit = TimeSpan.FromSeconds(2);

    /// <summary>A request's run on one ring: resumed on another ring, it runs again under a new id.</summary>
    private sealed class Attempt(ModelRing ring, string id, ChannelReader<RingPayload>? replies, CancellationToken cancellationToken)
    {
        /// <summary>Cancelled when the ring is silent too long; an attempt that timed out is over, and the next has its own.</summary>
        public CancellationTokenSource Watchdog { get; } = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        public ModelRing Ring { get; } = ring;

        public string Id { get; } = id;

        /// <summary>Null when the ring was already being replaced.</summary>
        public ChannelReader<RingPayload>? Replies { get; } = replies;

        public bool Finished { get; set; }

        public bool Closed { get; set; }
    }

    /// <summary>Sends the prompt, and what the client has already been sent, round the ring.</summary>
    private static Attempt Start(ModelRing ring, string model, GenerationRequest request, List<int> sent, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid().ToString("N");
        var replies = ring.Open(id);
        if (replies is null) return new Attempt(ring, id, null, cancellationToken);
        var prompt = sent.Count == 0 ? request.Prompt : [.. request.Prompt, .. sent];
        var resumed = request with { Prompt = prompt, MaxTokens = request.MaxTokens - sent.Count, Generated = request.Generated + sent.Count };
        ring.Send(new RingMessage(id, ring.Version, 0, new RingTokens(prompt), Setup(model, resumed)));
        return new Attempt(ring, id, replies, cancellationToken);
    }

    /// <summary>The next reply; silence longer than the token timeout counts as a lost ring.</summary>
    private async Task<RingPayload> NextReplyAsync(Attempt attempt, string model, CancellationToken cancellationToken)
    {
        attempt.Watchdog.CancelAfter(_tokenTimeout);
        try
        {
            return await attempt.Replies!.ReadAsync(attempt.Watchdog.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new RingError(RingErrorCode.NotReady, $"the ring for '{model}' sent nothing for {_tokenTimeout.TotalSeconds:0} s");
        }
    }

    /// <summary>A ring that was replaced or broke; a worker's own failure is the client's to hear about, and so is a full cache unless the request was resumed.</summary>
    private static bool Resumable(RingErrorCode code) => code is RingErrorCode.StalePlacement or RingErrorCode.NotReady;

    /// <summary>
    /// Waits for a ring to run a request of <paramref name="tokens"/> KV positions on: the least loaded of the model's rings
    /// that every stage has loaded, preferring one with room for it (<see cref="ModelPlacement.Choose{TRing}"/>), other than
    /// the ring that failed, which may serve again only when its link came back and no member left. Fails at once, saying
    /// why, when the planner or registry cannot be reached or the workers that are left cannot hold the model.
    /// </summary>
    private async Task<ModelRing> ReadyRingAsync(string model, long tokens, ModelRing? failed, string cause, CancellationToken cancellationToken)
    {
        var since = Stopwatch.GetTimestamp();
        while (true)
        {
            var waited = Stopwatch.GetElapsedTime(since);
            if (_placements.TryGetValue(model, out var placement))
            {
                if (placement.Problem is { } problem) throw new BackendUnavailableException($"{cause}, and the workers left cannot hold it: {problem}");
                if ((placement.LeastLoaded(tokens, avoid: failed) ?? (waited > SameRingPatience ? placement.LeastLoaded(tokens) : null)) is { } ring) return ring;
            }

            if (waited > DependencyPatience && !_plannerFollowed)
                throw new BackendUnavailableException($"{cause}, and the planner (Exo.Planner) is unreachable, so no new ring can be planned: check that it is running");
            if (waited > DependencyPatience && !_registryFollowed)
                throw new BackendUnavailableException($"{cause}, and the registry (Exo.Registry) is unreachable, so a lost worker cannot be planned out: check that it is running");
            if (waited > _resumeTimeout)
                throw new BackendUnavailableException($"{cause}, and no ring was ready within {_resumeTimeout.TotalSeconds:0} s; retry");
            await Task.Delay(ResumePoll, cancellationToken);
        }
    }

    private static readonly TimeSpan ResumePoll = TimeSpan.FromMilliseconds(50);

    /// <summary>A link that broke while its stage stays in the ring is given this long to come back (it retries every half second).</summary>
    private static readonly TimeSpan SameRingPatience = TimeSpan.FromSeconds(1);

    /// <summary>A watch stream that just broke may be reconnecting; one still down after this means the service is.</summary>
    private static readonly TimeSpan DependencyPatience = TimeSpan.FromSeconds(1);

    /// <summary>Stops an attempt: its replies, and its memory on every stage (the ends free a finished request themselves).</summary>
    private void Close(Attempt attempt, bool finished)
    {
        if (attempt.Closed) return;
        attempt.Closed = true;
        attempt.Watchdog.Dispose();
        attempt.Ring.Close(attempt.Id);
        if (attempt.Replies is null) return;
        // A request cut short (client gone, error, stop sequence, lost ring) may be anywhere in the ring: every stage hears.
        var stages = attempt.Ring.Stages;
        for (var i = finished ? 1 : 0; i < (finished ? stages.Count - 1 : stages.Count); i++) _ = CancelAsync(stages[i].GrpcEndpoint, attempt.Id);
    }

    /// <summary>The request's setup; the current span, when there is one, becomes the parent of every stage's spans.</summary>
    private static RingSetup Setup(string model, GenerationRequest request) => new(
        model,
        new RequestOptions(request.Prompt.Length + request.MaxTokens, request.Sampling, request.MaxTokens, request.EndTokens, request.Prompt, request.TopLogprobs,
            request.Output, request.Generated),
        Activity.Current is { IdFormat: ActivityIdFormat.W3C } activity ? activity.Id : null);

    private static Exception Failure(RingError error) => error.Code switch
    {
        RingErrorCode.Capacity => new BackendSaturatedException(error.Message),
        RingErrorCode.StalePlacement or RingErrorCode.NotReady => new BackendUnavailableException(error.Message),
        _ => new BackendFailedException($"the generation failed on a worker: {error.Message}"),
    };

    private async Task CancelAsync(string endpoint, string requestId)
    {
        try
        {
            await Shard(endpoint).CancelAsync(new CancelRequest { RequestId = requestId }, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(5)));
        }
        catch (Exception e) when (e is RpcException or HttpRequestException or IOException)
        {
            // The stage is gone, and its memory with it; an unreachable one frees idle requests by itself.
            LogCancelFailed(endpoint, e.Message);
        }
    }

    private Shard.ShardClient Shard(string endpoint) => _shards.GetOrAdd(endpoint, e => new Shard.ShardClient(_secret.Attach(GrpcChannel.ForAddress(e))));

    private async Task FollowPlacementsAsync(CancellationToken stopping)
    {
        using var call = _planner.WatchPlacements(new WatchPlacementsRequest(), new CallOptions(cancellationToken: stopping));
        await call.ResponseHeadersAsync;
        _plannerFollowed = true;
        while (await call.ResponseStream.MoveNext(stopping)) await AdoptAsync(call.ResponseStream.Current);
    }

    /// <summary>
    /// Takes a newer placement of a model: a ring whose version is unchanged keeps its <see cref="ModelRing"/> and its
    /// requests; the rings no longer placed are closed, their requests failing with a retryable error (resumed elsewhere).
    /// </summary>
    private async Task AdoptAsync(Placement placement)
    {
        if (_placements.TryGetValue(placement.ModelId, out var current) && current.Placement.Version >= placement.Version) return;
        if (current is { HasServed: true }) _served.TryAdd(placement.ModelId, true);
        // A ring with no stages cannot carry a request; building one would throw and stop the watch for good.
        foreach (var empty in placement.Rings.Where(r => r.Stages.Count == 0)) LogEmptyRing(placement.ModelId, placement.Version, empty.Version);
        var rings = placement.Rings
            .Where(r => r.Stages.Count > 0)
            .Select(r => current?.Rings.FirstOrDefault(kept => kept.Version == r.Version) ?? new ModelRing(placement.ModelId, r, Shard, _secret, _peers, _logger))
            .ToList();
        _placements[placement.ModelId] = new ModelPlacement(placement, rings);
        LogPlacement(placement.ModelId, placement.Version, placement.Rings.Count == 0 ? placement.Problem : string.Join("; ", placement.Rings.Select(r =>
            $"ring v{r.Version}{(current?.Rings.Any(kept => kept.Version == r.Version) == true ? " (kept)" : "")}: "
            + string.Join(", ", r.Stages.Select(s => $"{s.NodeId} [{s.LayerStart}, {s.LayerEnd})")))));
        foreach (var gone in current?.Rings.Except(rings) ?? []) await gone.DisposeAsync();
    }

    private async Task FollowMembersAsync(CancellationToken stopping)
    {
        using var call = _registry.Watch(new WatchNodesRequest(), new CallOptions(cancellationToken: stopping));
        await call.ResponseHeadersAsync;
        _registryFollowed = true;
        _nodes.Clear();
        while (await call.ResponseStream.MoveNext(stopping))
        {
            var change = call.ResponseStream.Current;
            if (change.Kind != NodeEvent.Types.Kind.Removed)
            {
                _nodes[change.Node.NodeId] = change.Node;
                // Back before the planner re-planned (it publishes nothing when its ring is unchanged): the ring may serve again.
                if (change.Kind == NodeEvent.Types.Kind.Added) foreach (var ring in AllRings()) ring.MemberBack(change.Node.NodeId);
                continue;
            }

            _nodes.TryRemove(change.Node.NodeId, out _);
            // Its requests are resumed as soon as the next ring is ready, without waiting for the planner to say so.
            foreach (var ring in AllRings()) ring.MemberLeft(change.Node.NodeId);
        }
    }

    private IEnumerable<ModelRing> AllRings() => _placements.Values.SelectMany(p => p.Rings);

    public KvRoom? Room(string model) => _placements.TryGetValue(model, out var placement) ? placement.Room() : null;

    public ClusterView Describe()
    {
        var nodes = _nodes.Values.OrderBy(n => n.NodeId, StringComparer.Ordinal)
            .Select(n => new NodeView(n.NodeId, n.GrpcEndpoint, n.Host, n.DeviceName.Length > 0 ? $"{n.Backend} ({n.DeviceName})" : n.Backend, (long)n.TotalMemoryBytes, (long)n.AvailableMemoryBytes, true)).ToList();
        var placements = _placements.Values.OrderBy(p => p.Placement.ModelId, StringComparer.Ordinal).Select(p => p.Describe()).ToList();
        return new ClusterView(nodes, placements);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await Task.WhenAll(_followers);
        foreach (var ring in AllRings()) await ring.DisposeAsync();
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Placement v{Version} of {Model}: {Rings}")]
    private partial void LogPlacement(string model, ulong version, string rings);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Placement v{Version} of {Model} has ring v{Ring} with no stages; skipped")]
    private partial void LogEmptyRing(string model, ulong version, ulong ring);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the planner's placement stream ({Reason}); reconnecting")]
    private partial void LogPlannerLost(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the registry's membership stream ({Reason}); reconnecting")]
    private partial void LogRegistryLost(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Resumed a request for {Model} after {Tokens} tokens on ring v{Version}, {Seconds:0.00} s after its ring was lost ({Reason})")]
    private partial void LogResumed(string model, int tokens, ulong version, double seconds, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Could not cancel a request on {Endpoint}: {Reason}")]
    private partial void LogCancelFailed(string endpoint, string reason);
}
