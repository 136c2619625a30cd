using System.Text.RegularExpressions;

namespace Exo.AppHost;

/// <summary>
/// Without the dashboard, every service's log lines are printed on the AppHost's standard output, prefixed with the
/// service's name (<c>worker-2 | ...</c>), so that a headless cluster still shows what each part does.
/// </summary>
public sealed partial class ServiceLogs(ResourceNotificationService notifications, ResourceLoggerService logs) : BackgroundService
{
    /// <summary>The resources whose logs are followed already; only the watch loop touches it.</summary>
    private readonly HashSet<string> _following = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var change in notifications.WatchAsync(stoppingToken))
            {
                if (change.Resource is not (ProjectResource or ExecutableResource)) continue;
                if (_following.Add(change.ResourceId)) _ = FollowAsync(change.ResourceId, change.Resource.Name, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The AppHost stops.
        }
    }

    private async Task FollowAsync(string resourceId, string name, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var batch in logs.WatchAsync(resourceId).WithCancellation(cancellationToken))
            {
                foreach (var line in batch) Console.WriteLine($"{name} | {Plain(line.Content)}");
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The AppHost stops.
        }
    }

    /// <summary>The line as the service wrote it: without the timestamp the log store puts in front, nor terminal colours.</summary>
    private static string Plain(string content) => Decorations().Replace(content, "");

    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT[\d:.]+Z |\e\[[\d;]*m")]
    private static partial Regex Decorations();
}
