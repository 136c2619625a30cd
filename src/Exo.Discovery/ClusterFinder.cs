using Exo.Contracts;
using Microsoft.Extensions.Logging;

namespace Exo.Discovery;

/// <summary>
/// Finds an Exo cluster on the local network: asks for <c>_exo._tcp.local</c> (again after 1, 2, 4, 8 s, then every
/// 10 s), listens to the answers and to announcements, and takes the cluster named, or, when none is named, the first
/// by name of those heard within <see cref="Settle"/> of the first answer (logging them all). Until one is found it says
/// so every <see cref="ReportEvery"/>.
/// </summary>
public sealed partial class ClusterFinder(MulticastChannel channel, ClusterSecret secret, ILogger logger)
{
    public static readonly TimeSpan Settle = TimeSpan.FromSeconds(1.5);
    private readonly PacketReader _reader = new(logger);
    public static readonly TimeSpan ReportEvery = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan LongestQueryGap = TimeSpan.FromSeconds(10);

    /// <summary>Packets heard that were not well-formed DNS or carried a bad advertisement (ignored, counted in the log).</summary>
    private readonly HashSet<string> _unsigned = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Waits until the cluster named <paramref name="cluster"/> (any, when null) answers; cancellable at any point.</summary>
    public async Task<ClusterAdvertisement> FindAsync(string? cluster, CancellationToken cancellationToken)
    {
        var seen = new SortedDictionary<string, ClusterAdvertisement>(StringComparer.OrdinalIgnoreCase);
        // Ends the read still pending when the finder returns.
        using var listening = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            var start = DateTime.UtcNow;
            var (nextQuery, queryGap, nextReport) = (start, TimeSpan.FromSeconds(1), start + TimeSpan.FromSeconds(2));
            DateTime? firstAnswer = null;
            var pending = channel.ReceiveAsync(listening.Token).AsTask();
            while (true)
            {
                var now = DateTime.UtcNow;
                if (now >= nextQuery)
                {
                    await channel.SendAsync(ServiceMessages.Query(), cancellationToken);
                    (nextQuery, queryGap) = (now + queryGap, TimeSpan.FromTicks(Math.Min(queryGap.Ticks * 2, LongestQueryGap.Ticks)));
                }

                if (Choose(cluster, seen, firstAnswer, now) is { } chosen) return chosen;
                if (now >= nextReport)
                {
                    // With clusters heard and none named, the choice is at most Settle away: nothing to report.
                    if (seen.Count == 0) LogNoneYet(logger, channel.Describe());
                    else if (cluster is not null) LogOthersOnly(logger, cluster, string.Join(", ", seen.Keys));
                    nextReport = now + ReportEvery;
                }

                var wake = new[] { nextQuery, nextReport, cluster is null && firstAnswer is { } f ? f + Settle : DateTime.MaxValue }.Min();
                var delay = wake - DateTime.UtcNow;
                if (delay > TimeSpan.Zero && await Task.WhenAny(pending, Task.Delay(delay, cancellationToken)) != pending)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    continue;
                }

                if (!pending.IsCompleted) continue;
                Hear(await pending, seen);
                firstAnswer = seen.Count > 0 ? firstAnswer ?? DateTime.UtcNow : null;
                pending = channel.ReceiveAsync(listening.Token).AsTask();
            }
        }
        finally
        {
            await listening.CancelAsync();
        }
    }

    private ClusterAdvertisement? Choose(string? cluster, SortedDictionary<string, ClusterAdvertisement> seen, DateTime? firstAnswer, DateTime now)
    {
        if (cluster is not null) return seen.GetValueOrDefault(cluster);
        if (seen.Count == 0 || firstAnswer is not { } first || now < first + Settle) return null;
        var chosen = seen.Values.First();
        if (seen.Count > 1) LogSeveral(logger, chosen.Cluster, string.Join(", ", seen.Keys));
        return chosen;
    }

    /// <summary>Takes in the clusters a packet advertises or withdraws.</summary>
    private void Hear(byte[] packet, SortedDictionary<string, ClusterAdvertisement> seen)
    {
        if (_reader.Read(packet) is not { } read) return;

        foreach (var (advertisement, withdrawn) in read.Advertisements)
        {
            // Only the cluster's own registry can sign with its secret: anyone else's advertisement is not acted on.
            if (!advertisement.IsSignedWith(secret))
            {
                if (_unsigned.Add(advertisement.Cluster)) LogNotSigned(logger, advertisement.Cluster, advertisement.Registry.ToString());
                continue;
            }

            if (withdrawn) seen.Remove(advertisement.Cluster);
            else seen[advertisement.Cluster] = advertisement;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Ignoring Exo cluster {Cluster} (registry {Registry}): its advertisement is not signed with this node's join secret (Cluster__Secret), so it is another cluster or a stranger")]
    private static partial void LogNotSigned(ILogger logger, string cluster, string registry);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "No Exo cluster found on the local network yet (listening for _exo._tcp on {Channel}); start one (exo's AppHost with --public), or pass --registry and --planner")]
    private static partial void LogNoneYet(ILogger logger, string channel);

    [LoggerMessage(Level = LogLevel.Information, Message = "No Exo cluster named {Cluster} on the local network yet; heard only: {Others} (pick one with --cluster)")]
    private static partial void LogOthersOnly(ILogger logger, string cluster, string others);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Several Exo clusters answer ({All}); joining {Chosen}, the first by name: pass --cluster NAME to choose")]
    private static partial void LogSeveral(ILogger logger, string chosen, string all);

}
