namespace Exo.AppHost;

/// <summary>
/// Restarts a service whose process ends on its own (a crash, a kill, an exit, a failed start), with back-off, and says
/// so; one stopped from the dashboard (which passes through Stopping) stays stopped, and nothing is restarted while the
/// AppHost itself stops.
/// </summary>
public sealed partial class CrashRestarts(
    ResourceNotificationService notifications, ResourceCommandService commands, IHostApplicationLifetime lifetime, ILogger<CrashRestarts> logger)
    : BackgroundService
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LongestDelay = TimeSpan.FromSeconds(30);

    /// <summary>A service that ran this long before it ended starts again from the first delay.</summary>
    private static readonly TimeSpan Steady = TimeSpan.FromSeconds(60);

    private readonly Dictionary<string, Tracked> _resources = [];

    /// <summary>One resource's last state and restarts; only the watch loop touches it (restarts wait for their delay elsewhere).</summary>
    private sealed class Tracked
    {
        public string? State;
        public int Restarts;

        /// <summary>When it last reached Running; null while it has never run since its last restart.</summary>
        public DateTime? RunningSince;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, lifetime.ApplicationStopping);
        try
        {
            await foreach (var change in notifications.WatchAsync(stopping.Token))
            {
                if (change.Resource is not (ProjectResource or ExecutableResource)) continue;
                if (!_resources.TryGetValue(change.ResourceId, out var tracked)) _resources[change.ResourceId] = tracked = new Tracked();
                var state = change.Snapshot.State?.Text;
                if (state == tracked.State) continue;
                var previous = tracked.State;
                tracked.State = state;
                if (state == KnownResourceStates.Running) tracked.RunningSince = DateTime.UtcNow;

                var ended = state == KnownResourceStates.Exited || state == KnownResourceStates.Finished || state == KnownResourceStates.FailedToStart;
                if (!ended || previous == KnownResourceStates.Stopping || stopping.IsCancellationRequested) continue;
                // One that ran steadily before it ended starts again from the first delay; one that never got going backs off further.
                if (DateTime.UtcNow - tracked.RunningSince >= Steady) tracked.Restarts = 0;
                tracked.RunningSince = null;
                var delay = TimeSpan.FromTicks(Math.Min(LongestDelay.Ticks, FirstDelay.Ticks << Math.Min(tracked.Restarts, 10)));
                tracked.Restarts++;
                LogRestarting(logger, change.Resource.Name, change.Snapshot.ExitCode?.ToString() ?? "unknown", delay.TotalSeconds, tracked.Restarts);
                _ = RestartAsync(change.ResourceId, change.Resource.Name, delay, stopping.Token);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // The AppHost stops: so do the restarts.
        }
    }

    private async Task RestartAsync(string resourceId, string name, TimeSpan delay, CancellationToken cancellationToken)
    {
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
