namespace Exo.ShardWorker.Stages;

/// <summary>Frees the KV caches of requests whose gateway vanished without cancelling them.</summary>
public sealed class IdleRequestSweeper(StageHosts hosts, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(30), time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            foreach (var host in hosts.All) host.Sweep();
        }
    }
}
