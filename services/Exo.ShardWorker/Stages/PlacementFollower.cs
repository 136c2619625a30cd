using Exo.Contracts.V1;
using Exo.Grpc;

namespace Exo.ShardWorker.Stages;

/// <summary>Follows the planner's placements and has this node serve its part of each.</summary>
public sealed partial class PlacementFollower(Contracts.V1.Planner.PlannerClient planner, StageHosts hosts, ILogger<PlacementFollower> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                using var call = planner.WatchPlacements(new WatchPlacementsRequest(), new CallOptions(CancellationToken: stoppingToken));
                while (await call.ResponseStream.MoveNext(stoppingToken)) await hosts.ApplyAsync(call.ResponseStream.Current, stoppingToken);
            }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException && !stoppingToken.IsCancellationRequested)
            {
                LogPlannerLost(e.Message);
            }
            catch (Exception) when (stoppingToken.IsCancellationRequested)
            {
                // The stream ends with the worker (a cancelled call).
                return;
            }

            await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the planner's placement stream ({Reason}); reconnecting")]
    private partial void LogPlannerLost(string reason);
}
