using Exo.Contracts.V1;
using Exo.Grpc;
using Exo.Planner.Planning;

namespace Exo.Planner.Grpc;

/// <summary>
/// Follows the registry's membership and re-plans every model when it changes, debounced so a burst of joins and
/// leaves gives one new placement. This is the only place that decides where layers run.
/// </summary>
public sealed partial class MembershipPlanner(
    Contracts.V1.Registry.RegistryClient registry,
    PlacementBoard board,
    IReadOnlyList<(string Model, ModelProfile Profile)> models,
    ILogger<MembershipPlanner> logger) : BackgroundService
{
    private readonly Dictionary<string, NodeInfo> _nodes = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await using var debouncer = new Debouncer(TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(2), Replan, e => LogPlanFailed(e));
        foreach (var (model, _) in models) board.Publish(new Contracts.V1.Placement { ModelId = model, Version = (ulong)board.NextVersion(), Problem = "no shard workers have joined yet" });

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                using var call = registry.Watch(new WatchNodesRequest(), new CallOptions(CancellationToken: stoppingToken));
                lock (_gate) _nodes.Clear();
                while (await call.ResponseStream.MoveNext(stoppingToken))
                {
                    var change = call.ResponseStream.Current;
                    lock (_gate)
                    {
                        if (change.Kind == NodeEvent.Types.Kind.Removed) _nodes.Remove(change.Node.NodeId);
                        else _nodes[change.Node.NodeId] = change.Node;
                    }

                    debouncer.Trigger();
                }
            }
            catch (Exception e) when (e is RpcException or HttpRequestException && !stoppingToken.IsCancellationRequested)
            {
                LogRegistryLost(e.Message);
            }

            await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
        }
    }

    private Task Replan(CancellationToken cancellationToken)
    {
        NodeInfo[] nodes;
        lock (_gate) nodes = _nodes.Values.ToArray();
        var capacities = nodes.Select(n => new NodeCapacity(n.NodeId, (long)Math.Min(n.AvailableMemoryBytes, long.MaxValue))).ToArray();
        foreach (var (model, profile) in models)
        {
            var current = board.Current(model);
            // Versions only grow; one spent on an unchanged ring is simply skipped.
            var version = board.NextVersion();
            var result = RingPlanner.TryPlan(capacities, profile, version);
            if (!result.Succeeded)
            {
                var problem = nodes.Length == 0 ? "no shard workers have joined yet" : result.Error!;
                if (current is { Stages.Count: 0 } && current.Problem == problem) continue;
                board.Publish(new Contracts.V1.Placement { ModelId = model, Version = (ulong)version, Problem = problem });
                LogCannotPlace(model, problem);
                continue;
            }

            var message = ToMessage(result.Placement!, nodes);
            if (current is not null && current.Stages.Equals(message.Stages)) continue;
            board.Publish(message);
            LogPlaced(model, message.Version, string.Join(", ", message.Stages.Select(s => $"{s.NodeId} [{s.LayerStart}, {s.LayerEnd})")));
        }

        return Task.CompletedTask;
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Placement v{Version} of {Model}: {Stages}")]
    private partial void LogPlaced(string model, ulong version, string stages);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot place {Model}: {Problem}")]
    private partial void LogCannotPlace(string model, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the registry's membership stream ({Reason}); reconnecting")]
    private partial void LogRegistryLost(string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Re-planning failed")]
    private partial void LogPlanFailed(Exception exception);
}
