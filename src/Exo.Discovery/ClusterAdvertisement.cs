using System.Text.RegularExpressions;
using Exo.Contracts;

namespace Exo.Discovery;

/// <summary>What a registry tells the local network about its cluster: the cluster's name and where its registry and planner answer.</summary>
public sealed partial record ClusterAdvertisement(string Cluster, Uri Registry, Uri Planner)
{
    /// <summary>
    /// The cluster join secret's signature of the rest (<see cref="ClusterSecret.Sign"/>), so that a node with the secret
    /// joins only its own cluster's advertisements: a stranger on the network could otherwise advertise a registry of its
    /// own and collect the secret that a joining node presents. None when the cluster has no secret.
    /// </summary>
    public string? Signature { get; init; }

    /// <summary>What <see cref="Signature"/> signs: every field a node acts on.</summary>
    public string SignedText => $"exo-cluster|v{ServiceMessages.Version}|{Cluster}|{Registry}|{Planner}";

    /// <summary>This advertisement signed with <paramref name="secret"/>.</summary>
    public ClusterAdvertisement SignedWith(ClusterSecret secret) => this with { Signature = secret.Sign(SignedText) };

    /// <summary>Whether a node with <paramref name="secret"/> may trust it: signed with that secret, or the node has none.</summary>
    public bool IsSignedWith(ClusterSecret secret) => secret.Verifies(SignedText, Signature);

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
