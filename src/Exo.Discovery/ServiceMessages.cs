using System.Net;
using Makaretu.Dns;

namespace Exo.Discovery;

/// <summary>The host that serves an advertised cluster's registry: its mDNS name, the registry's port and its addresses.</summary>
public sealed record AdvertisedHost(string HostName, int Port, IReadOnlyList<IPAddress> Addresses);

/// <summary>The DNS-SD messages of the <c>_exo._tcp.local</c> service (RFC 6763 over RFC 6762), as they go on the wire.</summary>
public static class ServiceMessages
{
    public const string ServiceType = "_exo._tcp.local";

    /// <summary>The TXT record's version: a finder ignores advertisements of another version.</summary>
    public const string Version = "1";

    /// <summary>How long receivers may keep the records (RFC 6762's 120 s for host records; re-announced well before).</summary>
    public static readonly TimeSpan RecordTtl = TimeSpan.FromSeconds(120);

    public static DomainName InstanceName(string cluster) => new($"{cluster}.{ServiceType}");

    /// <summary>A query for every instance of the service (PTR <c>_exo._tcp.local</c>).</summary>
    public static byte[] Query()
    {
        var query = new Message { Id = 0 };
        query.Questions.Add(new Question { Name = new DomainName(ServiceType), Type = DnsType.PTR, Class = DnsClass.IN });
        return query.ToByteArray();
    }

    /// <summary>
    /// The unsolicited response that announces (or, with a zero <paramref name="ttl"/>, withdraws) a cluster: PTR, SRV and
    /// TXT answers and the host's A/AAAA records as additional records.
    /// </summary>
    public static byte[] Announcement(ClusterAdvertisement advertisement, AdvertisedHost host, TimeSpan ttl)
    {
        var instance = InstanceName(advertisement.Cluster);
        var hostName = new DomainName(host.HostName);
        var response = new Message { Id = 0, QR = true, AA = true };
        response.Answers.Add(new PTRRecord { Name = new DomainName(ServiceType), DomainName = instance, TTL = ttl });
        response.Answers.Add(new SRVRecord { Name = instance, Target = hostName, Port = (ushort)host.Port, TTL = ttl });
        response.Answers.Add(new TXTRecord
        {
            Name = instance,
            TTL = ttl,
            Strings = [$"cluster={advertisement.Cluster}", $"registry={advertisement.Registry}", $"planner={advertisement.Planner}", $"v={Version}",
                .. advertisement.Signature is { } signature ? [$"sig={signature}"] : Array.Empty<string>()],
        });
        foreach (var address in host.Addresses) response.AdditionalRecords.Add(AddressRecord.Create(hostName, address).With(ttl));
        return response.ToByteArray();
    }

    private static ResourceRecord With(this ResourceRecord record, TimeSpan ttl)
    {
        record.TTL = ttl;
        return record;
    }
}
