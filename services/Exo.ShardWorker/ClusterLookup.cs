using System.Runtime.InteropServices;
using Exo.Discovery;

namespace Exo.ShardWorker;

/// <summary>
/// A worker given no registry address finds its cluster on the local network (mDNS, <c>_exo._tcp.local</c>) before the
/// host is built, and sets the registry's and planner's addresses it advertises as if they had been given by hand; the
/// rest of the worker does not know the difference. Ctrl-C or SIGTERM ends the wait.
/// </summary>
public static partial class ClusterLookup
{
    public const string RegistryKey = "services:registry:grpc:0";
    public const string PlannerKey = "services:planner:grpc:0";

    /// <summary>Fills in the addresses from the cluster found; <see cref="OperationCanceledException"/> when stopped first.</summary>
    public static void FindClusterWhenUnset(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        if (!string.IsNullOrWhiteSpace(configuration[RegistryKey])) return;
        var cluster = configuration["Cluster:Name"];
        if (cluster is not null && !ClusterAdvertisement.IsValidName(cluster))
            throw new InvalidOperationException($"--cluster '{cluster}' is not a cluster name: use 1 to 63 letters, digits, '-' or '_'");

        using var channel = new MulticastChannel(NetworkInterfaces.Multicast(configuration["Discovery:Interface"]));
        using var loggers = LoggerFactory.Create(l => l.AddConfiguration(configuration.GetSection("Logging")).AddConsole());
        var logger = loggers.CreateLogger(typeof(ClusterLookup).FullName!);
        using var stopping = new CancellationTokenSource();
        void Stop(PosixSignalContext signal)
        {
            signal.Cancel = true;
            stopping.Cancel();
        }

        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        var found = new ClusterFinder(channel, new Contracts.ClusterSecret(configuration[Contracts.ClusterSecret.Setting]), logger).FindAsync(cluster, stopping.Token).GetAwaiter().GetResult();
        configuration[RegistryKey] = found.Registry.ToString();
        // A planner given by hand wins over the advertised one.
        if (string.IsNullOrWhiteSpace(configuration[PlannerKey])) configuration[PlannerKey] = found.Planner.ToString();
        LogFound(logger, found.Cluster, configuration[RegistryKey]!, configuration[PlannerKey]!);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Found Exo cluster {Cluster} on the local network: registry {Registry}, planner {Planner}")]
    private static partial void LogFound(ILogger logger, string cluster, string registry, string planner);
}
