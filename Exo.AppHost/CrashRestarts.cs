using System.Collections.Concurrent;

namespace Exo.AppHost;

/// <summary>
/// Restarts a service whose process ends on its own (a crash, a kill), with back-off, and says so; one stopped from the
/// dashboard (which passes through Stopping) stays stopped, and nothing is restarted while the AppHost itself stops.
/// </summary>
public sealed partial class CrashRestarts(
    ResourceNotificationService notifications, ResourceCommandService commands, IHostApplicationLifetime lifetime, ILogger<CrashRestarts> logger)
    : BackgroundService
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LongestDelay = TimeSpan.FromSeconds(30);

    /// <summary>A service that ran this long before it ended starts again from the first delay.</summary>
    private static readonly TimeSpan Steady = TimeSpan.FromSeconds(60);

    private readonly ConcurrentDictionary<string, Tracked> _resources = new();

    private sealed class Tracked
    {
        public string? State;
        public int Restarts;
        public DateTime RunningSince;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, lifetime.ApplicationStopping);
        try
        {
            await foreach (var change in notifications.WatchAsync(stopping.Token))
            {
                if (change.Resource is not (ProjectResource or ExecutableResource)) continue;
                var tracked = _resources.GetOrAdd(change.ResourceId, _ => new Tracked());
                var state = change.Snapshot.State?.Text;
                if (state == tracked.State) continue;
                var previous = tracked.State;
                tracked.State = state;
                if (state == KnownResourceStates.Running) tracked.RunningSince = DateTime.UtcNow;

                var ended = state == KnownResourceStates.Exited || state == KnownResourceStates.Finished || state == KnownResourceStates.FailedToStart;
                if (!ended || previous == KnownResourceStates.Stopping || stopping.IsCancellationRequested) continue;
                _ = RestartAsync(change.ResourceId, change.Resource.Name, change.Snapshot.ExitCode, tracked, stopping.Token);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // The AppHost stops: so do the restarts.
        }
    }

    private async Task RestartAsync(string resourceId, string name, int? exitCode, Tracked tracked, CancellationToken cancellationToken)
    {
        if (DateTime.UtcNow - tracked.RunningSince >= Steady) tracked.Restarts = 0;
        var delay = TimeSpan.FromTicks(Math.Min(LongestDelay.Ticks, FirstDelay.Ticks << Math.Min(tracked.Restarts, 10)));
        tracked.Restarts++;
        LogRestarting(logger, name, exitCode?.ToString() ?? "unknown", delay.TotalSeconds, tracked.Restarts);
        try
        {
            await Task.Delay(delay, cancellationToken);
            var result = await commands.ExecuteCommandAsync(resourceId, KnownResourceCommands.StartCommand, cancellationToken);
            if (!result.Success) LogRestartFailed(logger, name, result.Message ?? "no reason given");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The AppHost stops while this one waits.
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Service} ended with exit code {ExitCode}; restarting it in {Delay:0} s (restart {Restart})")]
    private static partial void LogRestarting(ILogger logger, string service, string exitCode, double delay, int restart);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Service} could not be restarted: {Reason}; restart it from the dashboard or restart the AppHost")]
    private static partial void LogRestartFailed(ILogger logger, string service, string reason);
}
