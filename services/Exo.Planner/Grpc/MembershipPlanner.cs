using Exo.Inference;
using Exo.Contracts.V1;
using Exo.ServiceDefaults;
using Grpc.Core;
using Exo.Planner.Planning;

namespace Exo.Planner.Grpc;

/// <summary>
/// Follows the registry's membership and re-plans every model when it changes in a way that matters (see
/// <see cref="Membership"/>), debounced so a burst of joins and leaves gives one new placement. This is the only place
/// that decides where layers run: as many rings of each model as <see cref="ReplicaPlanner"/> places under
/// <see cref="Replicas"/>. A ring kept as it was keeps its version, so its requests go on; a new or changed one gets a new
/// version from the same counter, and the placement a newer one still. On start it takes the stored placements, so a
/// restarted planner serves at once.
/// </summary>
public sealed partial class MembershipPlanner(
    Contracts.V1.Registry.RegistryClient registry,
    PlacementBoard board,
    Replicas replicas,
    WeightQuantization quantization,
    IReadOnlyList<(string Model, ModelProfile Profile)> models,
    ILogger<MembershipPlanner> logger) : BackgroundService
{
    private const string NoWorkers = "no shard worker is in the cluster (none has joined, or every one has left)";

    private readonly Membership _membership = new();

    /// <summary>Restores the stored placements before the server starts answering, then starts following the registry.</summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        var profiles = models.ToDictionary(m => m.Model, m => m.Profile, StringComparer.Ordinal);
        // A stored placement is usable only for a model planned here whose layer count and weight type are still the same.
        var restored = await board.RestoreAsync(p => profiles.TryGetValue(p.ModelId, out var profile)
            && p.Rings.All(r => r.Stages[^1].LayerEnd == profile.LayerCount) && SameWeightType(p), cancellationToken);
        foreach (var placement in restored) LogRestored(placement.ModelId, placement.Version, placement.Rings.Count);

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
            var members = Members(nodes, model, quantization);
            var capacities = members.Select(n => new NodeCapacity(n.NodeId, (long)Math.Min(n.AvailableMemoryBytes, long.MaxValue), n.BandwidthBytesPerSecond, n.Flops)).ToArray();
            var result = members.Length == 0 ? null : ReplicaPlanner.TryPlan(capacities, profile, replicas, Rings(current));
            if (result is not { Succeeded: true })
            {
                var problem = nodes.Length == 0 ? NoWorkers
                    : members.Length == 0 ? Members(nodes, model, new WeightQuantization(null)).Length > 0
                        ? $"no worker that can hold model '{model}' can load weights quantized to {quantization} (Planner__Quantize): upgrade the workers"
                        : $"no worker has model '{model}' in its models directory"
                    : result!.Error!;
                if (current is { Rings.Count: 0 } && current.Problem == problem) continue;
                await board.PublishAsync(new Contracts.V1.Placement { ModelId = model, Version = (ulong)await board.NextVersionAsync(cancellationToken), Problem = problem }, cancellationToken);
                LogCannotPlace(model, problem);
                continue;
            }

            var message = new Contracts.V1.Placement { ModelId = model, WeightType = quantization.Name };
            foreach (var planned in result.Rings)
            {
                var ring = ToMessage(planned, members);
                // A ring kept in layout whose node moved to another endpoint is a new ring all the same.
                if (current?.Rings.FirstOrDefault(r => r.Version == ring.Version) is not { } kept || !kept.Stages.Equals(ring.Stages))
                    ring.Version = (ulong)await board.NextVersionAsync(cancellationToken);
                message.Rings.Add(ring);
            }

            if (current is not null && current.Rings.Equals(message.Rings)) continue;
            message.Version = (ulong)await board.NextVersionAsync(cancellationToken);
            await board.PublishAsync(message, cancellationToken);
            LogPlacement(message, result.Rings.Select(r => StepTime.Predict(new Planning.Placement(model, 1, r.Stages), capacities, profile)).ToArray());
        }
    }

    /// <summary>The rings of the current placement, as the planner compares them with the next.</summary>
    private static PlannedRing[] Rings(Contracts.V1.Placement? placement) =>
        placement is null ? [] : [.. placement.Rings.Select(r => new PlannedRing((long)r.Version,
            [.. r.Stages.Select(s => new PlacementStage(s.NodeId, new LayerRange((int)s.LayerStart, (int)s.LayerEnd), 0))]))];

    /// <summary>
    /// The nodes that can load the model's layers: those with it in their models directory, and, while one of those is in
    /// the cluster to copy it from, those that fetch what they lack; of those, only nodes that can quantize to the type asked for.
    /// </summary>
    private static NodeInfo[] Members(NodeInfo[] nodes, string model, WeightQuantization quantization)
    {
        if (quantization.Type is not null) nodes = [.. nodes.Where(n => n.WeightTypes.Contains(quantization.Name, StringComparer.Ordinal))];
        var holders = nodes.Where(n => n.ModelsOnDisk.Contains(model, StringComparer.Ordinal)).ToArray();
        return holders.Length == 0 ? [] : [.. holders, .. nodes.Where(n => n.FetchesModels && !holders.Contains(n))];
    }

    /// <summary>The ring's message; a ring new in this plan has version 0 until it is given one.</summary>
    private static Ring ToMessage(PlannedRing planned, NodeInfo[] nodes)
    {
        var ring = new Ring { Version = (ulong)(planned.Version ?? 0) };
        foreach (var stage in planned.Stages)
        {
            ring.Stages.Add(new Stage
            {
                NodeId = stage.NodeId,
                GrpcEndpoint = nodes.First(n => n.NodeId == stage.NodeId).GrpcEndpoint,
                LayerStart = (uint)stage.Layers.Start,
                LayerEnd = (uint)stage.Layers.End,
            });
        }

        return ring;
    }

    /// <summary>Logs each ring's stages with its predicted time per token (one ring as "a [0, 4), b [4, 8) (...)", several each after its version).</summary>
    private void LogPlacement(Contracts.V1.Placement placement, StepPrediction?[] predictions)
    {
        var rings = placement.Rings.Select((ring, i) =>
        {
            var stages = string.Join(", ", ring.Stages.Select(s => $"{s.NodeId} [{s.LayerStart}, {s.LayerEnd})"));
            var prediction = predictions[i] is { } p
                ? $"predicted {p.TokenSeconds * 1e3:0.0} ms/token, slowest stage {p.BottleneckSeconds * 1e3:0.0} ms"
                : "split by memory: not every node has measured its bandwidth";
            return placement.Rings.Count == 1 ? $"{stages} ({prediction})" : $"ring v{ring.Version}: {stages} ({prediction})";
        });
        LogPlaced(placement.ModelId, placement.Version, string.Join("; ", rings));
    }

    private bool SameWeightType(Contracts.V1.Placement stored)
    {
        if (stored.WeightType == quantization.Name) return true;
        LogOtherWeightType(stored.ModelId, stored.Version, stored.WeightType.Length == 0 ? "none" : stored.WeightType, quantization.ToString());
        return false;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stored placement v{Version} of {Model} has weights {Stored}, the planner is set to {Quantize} (Planner__Quantize): planned again")]
    private partial void LogOtherWeightType(string model, ulong version, string stored, string quantize);

    [LoggerMessage(Level = LogLevel.Information, Message = "Restored placement v{Version} of {Model} ({Rings} rings) from the store")]
    private partial void LogRestored(string model, ulong version, int rings);

    [LoggerMessage(Level = LogLevel.Information, Message = "Placement v{Version} of {Model}: {Rings}")]
    private partial void LogPlaced(string model, ulong version, string rings);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot place {Model}: {Problem}")]
    private partial void LogCannotPlace(string model, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the registry's membership stream ({Reason}); reconnecting")]
    private partial void LogRegistryLost(string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Re-planning failed")]
    private partial void LogPlanFailed(Exception exception);
}
