using System.Net;
using Exo.Discovery;
using Makaretu.Dns;

namespace Exo.Discovery.Tests;

/// <summary>The service's DNS-SD messages: what the advertiser sends reads back as sent, and nothing a network sends crashes the reader.</summary>
public sealed class ServicePacketTests
{
    private static readonly ClusterAdvertisement Lab = new("lab", new Uri("http://10.0.0.2:52416"), new Uri("http://10.0.0.2:52417"));
    private static readonly AdvertisedHost Host = new("studio.local", 52416, [IPAddress.Parse("10.0.0.2"), IPAddress.Parse("fd00::2")]);

    [Fact]
    public void AnAnnouncementReadsBackAsSent()
    {
        var packet = ServiceMessages.Announcement(Lab, Host, ServiceMessages.RecordTtl);
        var read = ServicePacket.Read(packet);
        Assert.False(read.AsksForService);
        Assert.Equal(new ReceivedAdvertisement(Lab, Withdrawn: false), Assert.Single(read.Advertisements));

        // The records a generic DNS-SD browser (avahi-browse, dns-sd) needs are there too.
        var message = (Message)new Message().Read(packet);
        Assert.Equal(new DomainName("lab._exo._tcp.local"), Assert.Single(message.Answers.OfType<PTRRecord>()).DomainName);
        var srv = Assert.Single(message.Answers.OfType<SRVRecord>());
        Assert.Equal((52416, new DomainName("studio.local")), (srv.Port, srv.Target));
        Assert.Contains("v=1", Assert.Single(message.Answers.OfType<TXTRecord>()).Strings);
        Assert.Equal(Host.Addresses, message.AdditionalRecords.OfType<AddressRecord>().Select(a => a.Address));
    }

    /// <summary>A node with the join secret acts only on its cluster's signed advertisements: not a stranger's, nor a changed one.</summary>
    [Fact]
    public void ASignedAnnouncementIsTrustedOnlyByHoldersOfTheSecret()
    {
        var secret = new Contracts.ClusterSecret("open sesame");
        var signed = Lab.SignedWith(secret);
        var read = Assert.Single(ServicePacket.Read(ServiceMessages.Announcement(signed, Host, ServiceMessages.RecordTtl)).Advertisements).Advertisement;
        Assert.Equal(signed, read);
        Assert.True(read.IsSignedWith(secret));
        Assert.False(read.IsSignedWith(new Contracts.ClusterSecret("another cluster")));
        Assert.True(read.IsSignedWith(Contracts.ClusterSecret.None));

        // A stranger's registry under the same name, with the signature copied or with none, is not trusted.
        Assert.False((read with { Registry = new Uri("http://10.0.0.66:52416") }).IsSignedWith(secret));
        Assert.False(Lab.IsSignedWith(secret));
        Assert.Null(Lab.SignedWith(Contracts.ClusterSecret.None).Signature);
    }

    [Fact]
    public void AGoodbyeWithdrawsTheCluster() =>
        Assert.True(Assert.Single(ServicePacket.Read(ServiceMessages.Announcement(Lab, Host, TimeSpan.Zero)).Advertisements).Withdrawn);

    [Fact]
    public void OurQueryAsksForTheServiceAndOthersDoNot()
    {
        Assert.True(ServicePacket.Read(ServiceMessages.Query()).AsksForService);
        Assert.True(ServicePacket.Read(Query("lab._exo._tcp.local", DnsType.SRV)).AsksForService);
        Assert.False(ServicePacket.Read(Query("_http._tcp.local", DnsType.PTR)).AsksForService);
        Assert.False(ServicePacket.Read(Query("lab._exo._tcp.local", DnsType.A)).AsksForService);
    }

    [Fact]
    public void OtherServicesAnswersAreNotClusters() =>
        Assert.Empty(ServicePacket.Read(Response(new TXTRecord { Name = "printer._ipp._tcp.local", Strings = ["v=1"] })).Advertisements);

    public static TheoryData<string, byte[]> NotDns => new()
    {
        { "empty", [] },
        { "header only, counts that lie", [0, 0, 0x84, 0, 0, 0, 0, 9, 0, 0, 0, 0] },
        { "cut in the middle", ServiceMessages.Announcement(Lab, Host, ServiceMessages.RecordTtl)[..60] },
        // A question whose name is a compression pointer to itself: a naive reader never ends.
        { "pointer loop", [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 12, 0, 1] },
        { "larger than mDNS allows", new byte[ServicePacket.MaxSize + 1] },
    };

    [Theory]
    [MemberData(nameof(NotDns))]
    public void PacketsThatAreNotDnsAreRefused(string what, byte[] packet)
    {
        Assert.NotNull(what);
        Assert.Throws<InvalidDataException>(() => ServicePacket.Read(packet));
    }

    [Theory]
    [InlineData("ftp registry", "cluster=lab", "registry=ftp://10.0.0.2:52416", "planner=http://10.0.0.2:52417", "v=1")]
    [InlineData("relative planner", "cluster=lab", "registry=http://10.0.0.2:52416", "planner=/planner", "v=1")]
    [InlineData("no planner", "cluster=lab", "registry=http://10.0.0.2:52416", "v=1")]
    [InlineData("another version", "cluster=lab", "registry=http://10.0.0.2:52416", "planner=http://10.0.0.2:52417", "v=2")]
    [InlineData("no version", "cluster=lab", "registry=http://10.0.0.2:52416", "planner=http://10.0.0.2:52417")]
    [InlineData("name not the instance's", "cluster=other", "registry=http://10.0.0.2:52416", "planner=http://10.0.0.2:52417", "v=1")]
    [InlineData("a key twice", "cluster=lab", "registry=http://10.0.0.2:52416", "registry=http://10.6.6.6:52416", "planner=http://10.0.0.2:52417", "v=1")]
    [InlineData("a signature not 64 hex digits", "cluster=lab", "registry=http://10.0.0.2:52416", "planner=http://10.0.0.2:52417", "v=1", "sig=xyz")]
    public void AdvertisementsWithBadFieldsAreRefused(string what, params string[] strings)
    {
        Assert.NotNull(what);
        var packet = Response(new TXTRecord { Name = "lab._exo._tcp.local", Strings = [.. strings] });
        Assert.Throws<InvalidDataException>(() => ServicePacket.Read(packet));
    }

    [Fact]
    public void AnInstanceNameThatIsNotAClusterNameIsRefused()
    {
        var packet = Response(new TXTRecord { Name = new DomainName(["bad name", "_exo", "_tcp", "local"]), Strings = ["cluster=bad name", "registry=http://a:1", "planner=http://a:2", "v=1"] });
        Assert.Throws<InvalidDataException>(() => ServicePacket.Read(packet));
    }

    [Fact]
    public void DamagedAnnouncementsNeverThrowAnythingElse()
    {
        var original = ServiceMessages.Announcement(Lab, Host, ServiceMessages.RecordTtl);
        var random = new Random(17);
        var (read, refused) = (0, 0);
        for (var i = 0; i < 5000; i++)
        {
            var packet = (byte[])original.Clone();
            for (var flips = random.Next(1, 4); flips > 0; flips--) packet[random.Next(packet.Length)] = (byte)random.Next(256);
            try
            {
                ServicePacket.Read(packet.AsSpan(0, random.Next(packet.Length / 2, packet.Length + 1)));
                read++;
            }
            catch (InvalidDataException)
            {
                refused++;
            }
        }

        // Both outcomes happen: the damage is not all in places the reader skips, nor all fatal.
        Assert.True(read > 0 && refused > 0, $"{read} read, {refused} refused");
    }

    [Theory]
    [InlineData("http://0.0.0.0:52416", "http://10.0.0.2:52416/")]
    [InlineData("http://localhost:52417", "http://10.0.0.2:52417/")]
    [InlineData("http://127.0.0.1:52417", "http://10.0.0.2:52417/")]
    [InlineData("http://[::]:52417", "http://10.0.0.2:52417/")]
    [InlineData("https://studio.example:443", "https://studio.example/")]
    public void LocalHostsAreAdvertisedWithTheMachinesAddress(string configured, string advertised) =>
        Assert.Equal(advertised, NetworkInterfaces.Reachable(new Uri(configured), IPAddress.Parse("10.0.0.2")).ToString());

    private static byte[] Query(string name, DnsType type)
    {
        var query = new Message();
        query.Questions.Add(new Question { Name = name, Type = type, Class = DnsClass.IN });
        return query.ToByteArray();
    }

    private static byte[] Response(ResourceRecord record)
    {
        var response = new Message { QR = true, AA = true };
        response.Answers.Add(record);
        return response.ToByteArray();
    }
}
