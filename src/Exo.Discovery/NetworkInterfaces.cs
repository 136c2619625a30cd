using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Exo.Discovery;

/// <summary>The interfaces mDNS runs on, and the address this machine is reached at on them.</summary>
public static class NetworkInterfaces
{
    /// <summary>
    /// Every interface that is up (Linux reports loopback's state as unknown) and multicast-capable, or only the one named;
    /// none found is an error that says what to do.
    /// </summary>
    public static IReadOnlyList<NetworkInterface> Multicast(string? name)
    {
        var all = NetworkInterface.GetAllNetworkInterfaces();
        var usable = all.Where(i => i.OperationalStatus is OperationalStatus.Up or OperationalStatus.Unknown && i.SupportsMulticast).ToList();
        if (name is not null)
        {
            return usable.Where(i => i.Name == name).ToList() is { Count: > 0 } named
                ? named
                : throw new InvalidOperationException(
                    $"network interface '{name}' is not up or not multicast-capable; choose one of: {string.Join(", ", usable.Select(i => i.Name).DefaultIfEmpty("(none)"))}");
        }

        return usable.Count > 0
            ? usable
            : throw new InvalidOperationException("no network interface is up and multicast-capable, so mDNS discovery cannot run: connect to a network, or give a worker --registry and --planner");
    }

    /// <summary>The first IPv4 address of these interfaces, a non-loopback one when there is one (then IPv6 the same way).</summary>
    public static IPAddress? PreferredAddress(IReadOnlyList<NetworkInterface> interfaces) =>
        Addresses(interfaces).OrderBy(a => IPAddress.IsLoopback(a)).ThenBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).FirstOrDefault();

    /// <summary>The unicast addresses of these interfaces that other machines can use (no IPv6 link-local: it needs a scope).</summary>
    public static IReadOnlyList<IPAddress> Addresses(IReadOnlyList<NetworkInterface> interfaces) =>
        interfaces.SelectMany(i => i.GetIPProperties().UnicastAddresses).Select(u => u.Address)
            .Where(a => a.AddressFamily == AddressFamily.InterNetwork || a.AddressFamily == AddressFamily.InterNetworkV6 && !a.IsIPv6LinkLocal)
            .Distinct().ToList();

    /// <summary>
    /// <paramref name="url"/> as other machines reach it: a host that means "this machine" (localhost, loopback, 0.0.0.0,
    /// [::], Kestrel's + and *) becomes <paramref name="address"/>.
    /// </summary>
    public static Uri Reachable(Uri url, IPAddress address)
    {
        var host = url.Host;
        var local = host is "localhost" or "+" or "*"
                    || IPAddress.TryParse(host, out var ip) && (IPAddress.IsLoopback(ip) || ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any));
        if (!local) return url;
        return new UriBuilder(url) { Host = address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString() }.Uri;
    }
}
