using System.Text.RegularExpressions;
using Exo.Discovery;
using Exo.ServiceDefaults;

namespace Exo.Registry.Discovery;

/// <summary>
/// With <c>Registry:Advertise</c> on, the registry tells the local network over mDNS where the cluster
/// <c>Cluster:Name</c> (default "exo") is: its own gRPC address (<c>Registry:AdvertisedRegistry</c>, by default its
/// Kestrel grpc endpoint) and the planner's (<c>Registry:AdvertisedPlanner</c>, by default <c>services:planner:grpc:0</c>),
/// a loopback or any-address host in either replaced by this machine's address on the network advertised on.
/// </summary>
public static partial class ClusterAdvertising
{
    public static void AddClusterAdvertising(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        var advertise = configuration["Registry:Advertise"];
        if (string.IsNullOrWhiteSpace(advertise) || advertise.Equals("false", StringComparison.OrdinalIgnoreCase)) return;
        if (!advertise.Equals("true", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"Registry:Advertise is '{advertise}': set it to true or false");

        var cluster = configuration["Cluster:Name"] ?? ClusterAdvertisement.DefaultCluster;
        if (!ClusterAdvertisement.IsValidName(cluster))
            throw new InvalidOperationException($"Cluster:Name '{cluster}' is not a cluster name: use 1 to 63 letters, digits, '-' or '_'");
        // Checked before the interfaces, so that a typing mistake is reported as such wherever this runs.
        var registry = ServiceUrl(configuration, "Registry:AdvertisedRegistry", configuration.Url(KestrelEndpoints.Grpc).ToString());
        var planner = ServiceUrl(configuration, "Registry:AdvertisedPlanner", configuration["services:planner:grpc:0"]);
        if (registry.Port == 0)
            throw new InvalidOperationException("the registry listens on a port chosen at start, which cannot be advertised: set Registry:AdvertisedRegistry or a fixed gRPC port");
        var interfaces = NetworkInterfaces.Multicast(configuration["Discovery:Interface"]);
        var address = NetworkInterfaces.PreferredAddress(interfaces)
                      ?? throw new InvalidOperationException($"the interfaces {string.Join(", ", interfaces.Select(i => i.Name))} have no IP address to advertise: set Discovery:Interface");
        (registry, planner) = (NetworkInterfaces.Reachable(registry, address), NetworkInterfaces.Reachable(planner, address));

        var advertisement = new ClusterAdvertisement(cluster, registry, planner).SignedWith(new Contracts.ClusterSecret(configuration[Contracts.ClusterSecret.Setting]));
        var host = new AdvertisedHost($"{HostLabel(Environment.MachineName)}.local", registry.Port, NetworkInterfaces.Addresses(interfaces));
        builder.Services.AddSingleton(_ => new MulticastChannel(interfaces));
        builder.Services.AddHostedService(sp => new ClusterAdvertiser(advertisement, host, sp.GetRequiredService<MulticastChannel>(), sp.GetRequiredService<ILogger<ClusterAdvertiser>>()));
    }

    private static Uri ServiceUrl(IConfiguration configuration, string key, string? fallback)
    {
        var value = configuration[key] ?? fallback;
        if (string.IsNullOrWhiteSpace(value))
            throw new InvalidOperationException($"Registry:Advertise is on but {key} is not set: set it to the gRPC URL other machines reach, e.g. http://10.0.0.2:52417");
        if (!ClusterAdvertisement.IsServiceUrl(value, out var url))
            throw new InvalidOperationException($"{key} is '{value}', which is not an absolute http or https address");
        // A TXT string holds 255 bytes, "planner=" included.
        return url.ToString().Length <= 240 ? url : throw new InvalidOperationException($"{key} is longer than the 240 characters an advertisement holds");
    }

    /// <summary>The machine's name as one DNS label (mDNS host names are <c>label.local</c>).</summary>
    private static string HostLabel(string machine)
    {
        var label = NotLabel().Replace(machine.ToLowerInvariant(), "-").Trim('-');
        return label.Length == 0 ? "exo-registry" : label[..Math.Min(label.Length, 63)];
    }

    [GeneratedRegex("[^a-z0-9-]+")]
    private static partial Regex NotLabel();
}
