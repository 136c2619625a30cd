using Exo.Contracts.V1;
using Exo.ServiceDefaults;
using Grpc.Core;
using Exo.Planner.Planning;

namespace Exo.Planner.Grpc;

/// <summary>
/// Follows the registry's membership and re-plans every model when it changes in a way that matters (see
/// <see cref="Membership"/>), debounced so a burst of joins and leaves gives one new placement. This is the only place
/// that decides where layers run. On start it takes the stored placements, so a restarted planner serves at once.
/// </summary>
public sealed partial class MembershipPlanner(
    Contracts.V1.Registry.RegistryClient registry,
    PlacementBoard board,
    IReadOnlyList<(string Model, ModelProfile Profile)> models,
    ILogger<MembershipPlanner> logger) : BackgroundService
{
    private const string NoWorkers = "no shard worker is in the cluster (none has joined, or every one has left)";

    private readonly Membership _membership = new();

    /// <summary>Restores the stored placements before the server starts answering, then starts following the registry.</summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        var profiles = models.ToDictionary(m => m.Model, m => m.Profile, StringComparer.Ordinal);
        // A stored ring is usable only for a model planned here whose layer count is still the same.
        var restored = await board.RestoreAsync(p => profiles.TryGetValue(p.ModelId, out var profile)
            && (p.Stages.Count == 0 || p.Stages[^1].LayerEnd == profile.LayerCount), cancellationToken);
        foreach (var placement in restored) LogRestored(placement.ModelId, placement.Version, placement.Stages.Count);

        foreach (var (model, _) in models.Where(m => board.Current(m.Model) is null))
        {
            var placement = new Contracts.V1.Placement { ModelId = model, Version = (ulong)await board.NextVersionAsync(cancellationToken), Problem = NoWorkers };
            await board.PublishAsync(placement, cancellationToken);
        }

        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await using var debouncer = new Debouncer(TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(2), Replan, e => LogPlanFailed(e));
        await StreamFollowing.FollowAsync(async stopping =>
        {
            // The watch is opened first, so no change after the listing is missed; it repeats the listed members,
            // which change nothing. The listing makes the first re-plan complete, and happen even when the
            // stream stays silent because every node left while the planner was away.
            using var call = registry.Watch(new WatchNodesRequest(), new CallOptions(cancellationToken: stopping));
            var members = await registry.ListAsync(new ListNodesRequest(), new CallOptions(cancellationToken: stopping));
            _membership.Reset(members.Nodes);
            debouncer.Trigger();
            while (await call.ResponseStream.MoveNext(stopping))
            {
                if (_membership.Apply(call.ResponseStream.Current)) debouncer.Trigger();
            }
        }, e => LogRegistryLost(e.Message), stoppingToken);
    }

    private async Task Replan(CancellationToken cancellationToken)
    {
        var nodes = _membership.Snapshot();
        foreach (var (model, profile) in models)
        {
            var current = board.Current(model);
            var members = Members(nodes, model);
            var capacities = members.Select(n => new NodeCapacity(n.NodeId, (long)Math.Min(n.AvailableMemoryBytes, long.MaxValue), n.BandwidthBytesPerSecond, n.Flops)).ToArray();
            // Versions only grow; one spent on an unchanged ring is simply skipped.
            var version = await board.NextVersionAsync(cancellationToken);
            var result = members.Length == 0 ? null : RingPlanner.TryPlan(capacities, profile, version);
            if (result is not { Succeeded: true })
            {
                var problem = nodes.Length == 0 ? NoWorkers
                    : members.Length == 0 ? $"no worker has model '{model}' in its models directory"
                    : result!.Error!;
                if (current is { Stages.Count: 0 } && current.Problem == problem) continue;
                await board.PublishAsync(new Contracts.V1.Placement { ModelId = model, Version = (ulong)version, Problem = problem }, cancellationToken);
                LogCannotPlace(model, problem);
                continue;
            }

            var message = ToMessage(result.Placement!, members);
            if (current is not null && current.Stages.Equals(message.Stages)) continue;
            await board.PublishAsync(message, cancellationToken);
            LogPlacement(message, StepTime.Predict(result.Placement!, capacities, profile));
        }
    }

    /// <summary>
    /// The nodes that can load the model's layers: those with it in their models directory, and, while one of those is in
    /// the cluster to copy it from, those that fetch what they lack.
    /// </summary>
    private static NodeInfo[] Members(NodeInfo[] nodes, string model)
    {
        var holders = nodes.Where(n => n.ModelsOnDisk.Contains(model, StringComparer.Ordinal)).ToArray();
        return holders.Length == 0 ? [] : [.. holders, .. nodes.Where(n => n.FetchesModels && !holders.Contains(n))];
    }

    private static Contracts.V1.Placement ToMessage(Planning.Placement placement, NodeInfo[] nodes)
    {
        var message = new Contracts.V1.Placement { ModelId = placement.ModelId, Version = (ulong)placement.Version };
        foreach (var stage in placement.Stages)
        {
            message.Stages.Add(new Stage
            {
                NodeId = stage.NodeId,
                GrpcEndpoint = nodes.First(n => n.NodeId == stage.NodeId).GrpcEndpoint,
                LayerStart = (uint)stage.Layers.Start,
                LayerEnd = (uint)stage.Layers.End,
            });
        }

        return message;
    }

    private void LogPlacement(Contracts.V1.Placement placement, StepPrediction? prediction)
    {
        var stages = string.Join(", ", placement.Stages.Select(s => $"{s.NodeId} [{s.LayerStart}, {s.LayerEnd})"));
        if (prediction is null) LogPlacedByMemory(placement.ModelId, placement.Version, stages);
        else LogPlaced(placement.ModelId, placement.Version, stages, prediction.TokenSeconds * 1e3, prediction.BottleneckSeconds * 1e3);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Restored placement v{Version} of {Model} ({Stages} stages) from the store")]
    private partial void LogRestored(string model, ulong version, int stages);

    [LoggerMessage(Level = LogLevel.Information, Message = "Placement v{Version} of {Model}: {Stages} (predicted {TokenMilliseconds:0.0} ms/token, slowest stage {StageMilliseconds:0.0} ms)")]
    private partial void LogPlaced(string model, ulong version, string stages, double tokenMilliseconds, double stageMilliseconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "Placement v{Version} of {Model}: {Stages} (split by memory: not every node has measured its bandwidth)")]
    private partial void LogPlacedByMemory(string model, ulong version, string stages);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot place {Model}: {Problem}")]
    private partial void LogCannotPlace(string model, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the registry's membership stream ({Reason}); reconnecting")]
    private partial void LogRegistryLost(string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Re-planning failed")]
    private partial void LogPlanFailed(Exception exception);
}
