using System.Text.RegularExpressions;

namespace Exo.Discovery;

/// <summary>What a registry tells the local network about its cluster: the cluster's name and where its registry and planner answer.</summary>
public sealed partial record ClusterAdvertisement(string Cluster, Uri Registry, Uri Planner)
{
    /// <summary>The cluster name used when none is set (<c>Cluster:Name</c>).</summary>
    public const string DefaultCluster = "exo";

    /// <summary>A name that is one DNS label: letters, digits, '-' and '_', 1 to 63 characters, starting with a letter or digit.</summary>
    public static bool IsValidName(string? name) => name is not null && NamePattern().IsMatch(name);

    /// <summary>An absolute http or https address, as the registry's and planner's gRPC clients need.</summary>
    public static bool IsServiceUrl(string? value, out Uri url) =>
        Uri.TryCreate(value, UriKind.Absolute, out url!) && url.Scheme is "http" or "https" && !string.IsNullOrEmpty(url.Host);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")]
    private static partial Regex NamePattern();
}
