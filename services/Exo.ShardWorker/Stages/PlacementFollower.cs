using Exo.Contracts.V1;
using Exo.ServiceDefaults;
using Grpc.Core;

namespace Exo.ShardWorker.Stages;

/// <summary>Follows the planner's placements and has this node serve its part of each.</summary>
public sealed partial class PlacementFollower(Contracts.V1.Planner.PlannerClient planner, StageHosts hosts, ILogger<PlacementFollower> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        StreamFollowing.FollowAsync(async stopping =>
        {
            using var call = planner.WatchPlacements(new WatchPlacementsRequest(), new CallOptions(cancellationToken: stopping));
            while (await call.ResponseStream.MoveNext(stopping)) await hosts.ApplyAsync(call.ResponseStream.Current, stopping);
        }, e => LogPlannerLost(e.Message), stoppingToken);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the planner's placement stream ({Reason}); reconnecting")]
    private partial void LogPlannerLost(string reason);
}
