using Makaretu.Dns;

namespace Exo.Discovery;

/// <summary>An advertisement as received: present, or withdrawn (a goodbye, TTL 0).</summary>
public sealed record ReceivedAdvertisement(ClusterAdvertisement Advertisement, bool Withdrawn);

/// <summary>
/// What one received mDNS packet means for the <c>_exo._tcp</c> service: whether it asks for it, and the advertisements
/// it carries. Everything from the network is checked; a packet that is not well-formed DNS is an
/// <see cref="InvalidDataException"/>, a well-formed one with a bad advertisement is one too.
/// </summary>
public sealed record ServicePacket(bool AsksForService, IReadOnlyList<ReceivedAdvertisement> Advertisements)
{
    /// <summary>The largest mDNS packet (RFC 6762 §17: 9000 bytes, jumbo frames included); larger ones are refused unread.</summary>
    public const int MaxSize = 9000;

    private static readonly DomainName Service = new(ServiceMessages.ServiceType);

    public static ServicePacket Read(ReadOnlySpan<byte> packet)
    {
        if (packet.Length > MaxSize) throw new InvalidDataException($"a {packet.Length}-byte packet is larger than mDNS allows ({MaxSize})");
        var message = Parse(packet.ToArray());
        // RFC 6762 §18.3: an Opcode other than 0 is ignored; so is a response with an error code.
        if (message.Opcode != MessageOperation.Query || message.Status != MessageStatus.NoError) return new(false, []);
        if (message.IsQuery) return new(message.Questions.Any(AsksFor), []);
        var advertisements = message.Answers.Concat(message.AdditionalRecords).OfType<TXTRecord>()
            .Where(t => IsInstanceName(t.Name))
            .Select(t => new ReceivedAdvertisement(Advertisement(t), t.TTL == TimeSpan.Zero))
            .ToList();
        return new(false, advertisements);
    }

    private static Message Parse(byte[] packet)
    {
        try
        {
            var message = new Message();
            message.Read(packet, 0, packet.Length);
            return message;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The library throws whatever its reader met (end of stream, bad label, bad pointer): all mean the same here.
            throw new InvalidDataException($"not a DNS message ({e.GetType().Name}: {e.Message})", e);
        }
    }

    private static bool AsksFor(Question question) =>
        question.Type is DnsType.PTR or DnsType.ANY && question.Name == Service
        || question.Type is DnsType.SRV or DnsType.TXT or DnsType.ANY && IsInstanceName(question.Name);

    /// <summary>One label before <c>_exo._tcp.local</c>: the cluster's instance.</summary>
    private static bool IsInstanceName(DomainName name) => name.Labels.Count == 4 && name.Parent() == Service;

    private static ClusterAdvertisement Advertisement(TXTRecord txt)
    {
        var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in txt.Strings)
        {
            var equals = entry.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0) continue; // RFC 6763 §6.4: a boolean attribute or an empty key; none is ours.
            if (!fields.TryAdd(entry[..equals], entry[(equals + 1)..])) throw new InvalidDataException($"the TXT record of {txt.Name} repeats '{entry[..equals]}'");
        }

        if (!fields.TryGetValue("v", out var version) || version != ServiceMessages.Version)
            throw new InvalidDataException($"the TXT record of {txt.Name} has version '{version}', not {ServiceMessages.Version}");
        var cluster = fields.GetValueOrDefault("cluster");
        if (!ClusterAdvertisement.IsValidName(cluster) || !string.Equals(cluster, txt.Name.Labels[0], StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"the TXT record of {txt.Name} names cluster '{cluster}', which is not its instance name or not a valid name");
        if (!ClusterAdvertisement.IsServiceUrl(fields.GetValueOrDefault("registry"), out var registry) || !ClusterAdvertisement.IsServiceUrl(fields.GetValueOrDefault("planner"), out var planner))
            throw new InvalidDataException($"the TXT record of {txt.Name} lacks an absolute http(s) registry or planner address");
        var signature = fields.GetValueOrDefault("sig");
        if (signature is not null && (signature.Length != 64 || !signature.All(char.IsAsciiHexDigit)))
            throw new InvalidDataException($"the TXT record of {txt.Name} has a signature that is not 64 hex digits");
        return new ClusterAdvertisement(cluster!, registry, planner) { Signature = signature };
    }
}
