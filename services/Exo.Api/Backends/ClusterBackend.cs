using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Exo.Contracts.V1;
using Exo.Inference.Pipeline;
using Exo.Ring;
using Exo.ServiceDefaults;
using Grpc.Core;
using Grpc.Net.Client;

namespace Exo.Api.Backends;

/// <summary>
/// Runs prompts round the ring of shard workers that the planner placed each model on. It follows the planner's
/// placements and the registry's members, keeps a <see cref="ModelRing"/> for each model's current placement (the one
/// multiplexed stream to its first stage, which relays the sampled tokens back), and runs each request on it. A placement
/// is used only once every stage reports its layers loaded; until then requests get 503 with the reason.
/// </summary>
public sealed partial class ClusterBackend : IGenerationBackend, IAsyncDisposable
{
    private readonly Contracts.V1.Planner.PlannerClient _planner;
    private readonly Contracts.V1.Registry.RegistryClient _registry;
    private readonly TimeSpan _tokenTimeout;
    private readonly ILogger<ClusterBackend> _logger;
    private readonly ConcurrentDictionary<string, ModelRing> _rings = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, NodeInfo> _nodes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Shard.ShardClient> _shards = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task[] _followers;

    public ClusterBackend(Contracts.V1.Planner.PlannerClient planner, Contracts.V1.Registry.RegistryClient registry, TimeSpan tokenTimeout, ILogger<ClusterBackend> logger)
    {
        _planner = planner;
        _registry = registry;
        _tokenTimeout = tokenTimeout;
        _logger = logger;
        // The first request that needs the backend creates it: without this its trace would adopt the watch streams, and
        // every ring link they open, for the life of the process.
        using (ExecutionContext.SuppressFlow())
        {
            _followers =
            [
                Task.Run(() => StreamFollowing.FollowAsync(FollowPlacementsAsync, e => LogPlannerLost(e.Message), _stopping.Token)),
                Task.Run(() => StreamFollowing.FollowAsync(FollowMembersAsync, e => LogRegistryLost(e.Message), _stopping.Token)),
            ];
        }
    }

    public async IAsyncEnumerable<GenerationEvent> GenerateAsync(string model, GenerationRequest request,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!_rings.TryGetValue(model, out var ring))
            throw new BackendUnavailableException($"model '{model}' has no placement yet: the planner has not answered; check that Exo.Planner is running");
        if (ring.Placement.Stages.Count == 0) throw new BackendUnavailableException($"model '{model}' cannot be served now: {ring.Placement.Problem}");
        if (!ring.Ready)
            throw new BackendUnavailableException(
                $"model '{model}' is loading on {ring.Placement.Stages.Count} worker(s) (placement v{ring.Placement.Version}); retry in a few seconds");

        var id = Guid.NewGuid().ToString("N");
        var finished = false;
        var replies = ring.Open(id) ?? throw new BackendUnavailableException($"model '{model}' is being re-planned; retry in a few seconds");
        try
        {
            ring.Send(new RingMessage(id, ring.Placement.Version, 0, new RingTokens(request.Prompt), Setup(model, request)));
            using var watchdog = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            while (true)
            {
                watchdog.CancelAfter(_tokenTimeout);
                RingPayload reply;
                try
                {
                    reply = await replies.ReadAsync(watchdog.Token);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new BackendUnavailableException($"the ring for '{model}' sent nothing for {_tokenTimeout.TotalSeconds:0} s; a worker may have left — retry");
                }

                if (reply is RingError error) throw Failure(error);
                if (reply is not RingSampledToken sampled) continue;
                yield return new GenerationEvent(sampled.Token, sampled.Finish, sampled.Logprobs);
                if (sampled.Finish is not null)
                {
                    finished = true;
                    yield break;
                }
            }
        }
        finally
        {
            ring.Close(id);
            // The first and last stages free a finished request themselves; only the middle ones never see its end.
            // A request cut short (client gone, error, stop sequence) may be anywhere in the ring: every stage hears.
            var stages = ring.Placement.Stages;
            for (var i = finished ? 1 : 0; i < (finished ? stages.Count - 1 : stages.Count); i++) _ = CancelAsync(stages[i].GrpcEndpoint, id);
        }
    }

    /// <summary>The request's setup; the current span, when there is one, becomes the parent of every stage's spans.</summary>
    private static RingSetup Setup(string model, GenerationRequest request) => new(
        model,
        new RequestOptions(request.Prompt.Length + request.MaxTokens, request.Sampling, request.MaxTokens, request.EndTokens, request.Prompt, request.TopLogprobs),
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

    private Shard.ShardClient Shard(string endpoint) => _shards.GetOrAdd(endpoint, e => new Shard.ShardClient(GrpcChannel.ForAddress(e)));

    private async Task FollowPlacementsAsync(CancellationToken stopping)
    {
        using var call = _planner.WatchPlacements(new WatchPlacementsRequest(), new CallOptions(cancellationToken: stopping));
        while (await call.ResponseStream.MoveNext(stopping)) await AdoptAsync(call.ResponseStream.Current);
    }

    /// <summary>Replaces a model's ring with a newer placement; requests on the old one fail with a retryable error.</summary>
    private async Task AdoptAsync(Placement placement)
    {
        if (_rings.TryGetValue(placement.ModelId, out var current) && current.Placement.Version >= placement.Version) return;
        var ring = new ModelRing(placement, Shard, _logger);
        _rings[placement.ModelId] = ring;
        LogPlacement(placement.ModelId, placement.Version, placement.Stages.Count == 0 ? placement.Problem : string.Join(", ", placement.Stages.Select(s => $"{s.NodeId} [{s.LayerStart}, {s.LayerEnd})")));
        if (current is not null) await current.DisposeAsync();
    }

    private async Task FollowMembersAsync(CancellationToken stopping)
    {
        using var call = _registry.Watch(new WatchNodesRequest(), new CallOptions(cancellationToken: stopping));
        _nodes.Clear();
        while (await call.ResponseStream.MoveNext(stopping))
        {
            var change = call.ResponseStream.Current;
            if (change.Kind == NodeEvent.Types.Kind.Removed) _nodes.TryRemove(change.Node.NodeId, out _);
            else _nodes[change.Node.NodeId] = change.Node;
        }
    }

    public KvRoom? Room(string model) => _rings.TryGetValue(model, out var ring) ? ring.Room : null;

    public ClusterView Describe()
    {
        var nodes = _nodes.Values.OrderBy(n => n.NodeId, StringComparer.Ordinal)
            .Select(n => new NodeView(n.NodeId, n.GrpcEndpoint, n.Host, n.DeviceName.Length > 0 ? $"{n.Backend} ({n.DeviceName})" : n.Backend, (long)n.TotalMemoryBytes, (long)n.AvailableMemoryBytes, true)).ToList();
        var placements = _rings.Values.OrderBy(r => r.Placement.ModelId, StringComparer.Ordinal).Select(r => r.Describe()).ToList();
        return new ClusterView(nodes, placements);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await Task.WhenAll(_followers);
        foreach (var ring in _rings.Values) await ring.DisposeAsync();
        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Placement v{Version} of {Model}: {Stages}")]
    private partial void LogPlacement(string model, ulong version, string stages);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the planner's placement stream ({Reason}); reconnecting")]
    private partial void LogPlannerLost(string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the registry's membership stream ({Reason}); reconnecting")]
    private partial void LogRegistryLost(string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Could not cancel a request on {Endpoint}: {Reason}")]
    private partial void LogCancelFailed(string endpoint, string reason);
}
