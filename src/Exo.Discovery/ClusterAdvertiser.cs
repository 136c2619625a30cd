using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Exo.Discovery;

/// <summary>
/// Advertises a cluster on the local network as <c>{cluster}._exo._tcp.local</c>: announces it at start (twice, a second
/// apart, as RFC 6762 §8.3 asks) and then every <see cref="Period"/>, answers queries for the service, and withdraws it
/// (TTL 0) when the host stops.
/// </summary>
public sealed partial class ClusterAdvertiser(ClusterAdvertisement advertisement, AdvertisedHost host, MulticastChannel channel, ILogger<ClusterAdvertiser> logger)
    : BackgroundService
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(30);
    private readonly PacketReader _reader = new(logger);

    /// <summary>Packets heard that were not well-formed DNS or carried a bad advertisement (ignored, counted in the log).</summary>

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var announcement = ServiceMessages.Announcement(advertisement, host, ServiceMessages.RecordTtl);
        LogAdvertising(logger, advertisement.Cluster, advertisement.Registry, advertisement.Planner, channel.Describe());
        var answering = AnswerQueriesAsync(announcement, stoppingToken);
        try
        {
            await channel.SendAsync(announcement, stoppingToken);
            await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
            using var timer = new PeriodicTimer(Period);
            do await channel.SendAsync(announcement, stoppingToken);
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await answering;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        // The goodbye: finders drop the cluster now rather than when its records expire.
        await channel.SendAsync(ServiceMessages.Announcement(advertisement, host, TimeSpan.Zero), cancellationToken);
        LogWithdrawn(logger, advertisement.Cluster);
    }

    private async Task AnswerQueriesAsync(byte[] announcement, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var packet = await channel.ReceiveAsync(cancellationToken);
                if (_reader.Read(packet) is { AsksForService: true }) await channel.SendAsync(announcement, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Advertising Exo cluster {Cluster} on the local network (registry {Registry}, planner {Planner}) over mDNS on {Channel}")]
    private static partial void LogAdvertising(ILogger logger, string cluster, Uri registry, Uri planner, string channel);

    [LoggerMessage(Level = LogLevel.Information, Message = "Withdrew the advertisement of Exo cluster {Cluster}")]
    private static partial void LogWithdrawn(ILogger logger, string cluster);

}
