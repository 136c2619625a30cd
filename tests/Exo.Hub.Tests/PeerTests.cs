using System.Net;
using System.Net.Sockets;
using System.Text;
using Exo.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace Exo.Hub.Tests;

/// <summary>
/// A peer worker's file server (MapModelFiles on a real Kestrel port) and PeerSource against it: a model copied from a
/// peer while the hub is unreachable, and every request that could reach outside a model folder refused.
/// </summary>
public sealed class PeerTests : IAsyncLifetime
{
    private const string Secret = "cluster-s3cret";
    private const string Outside = "the contents of a file outside the models directory";

    private readonly TempDirectory _models = new();
    private readonly TempDirectory _elsewhere = new();
    private readonly TempDirectory _temp = new();
    private readonly HttpClient _http = HubHttp.CreateClient();
    private WebApplication _peer = null!;
    private int _port;

    public async Task InitializeAsync()
    {
        // The shipped model through a link, as EXO_HOME/models links into the hub cache; and a folder with traps.
        Directory.CreateSymbolicLink(Path.Combine(_models.Path, "exo-tiny"), RepositoryPaths.ShippedModel);
        var traps = Directory.CreateDirectory(Path.Combine(_models.Path, "traps")).FullName;
        File.WriteAllText(Path.Combine(traps, "config.json"), "{}");
        Directory.CreateDirectory(Path.Combine(traps, "sub"));
        File.WriteAllText(Path.Combine(traps, "sub", "inner.txt"), "inner");
        File.WriteAllText(Path.Combine(traps, ".hidden"), "hidden");
        File.WriteAllText(Path.Combine(traps, "weights.bin" + ModelDownloader.PartialSuffix), "unfinished");
        File.WriteAllText(_elsewhere.File("secret.txt"), Outside);
        File.CreateSymbolicLink(Path.Combine(traps, "escape.txt"), _elsewhere.File("secret.txt"));
        Directory.CreateSymbolicLink(Path.Combine(traps, "escape-dir"), _elsewhere.Path);

        _port = Ports.Free();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, _port));
        _peer = builder.Build();
        _peer.MapModelFiles(new ModelFileOptions(_models.Path) { Secret = new ClusterSecret(Secret) });
        await _peer.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _peer.DisposeAsync();
        _http.Dispose();
        _temp.Dispose();
        _elsewhere.Dispose();
        _models.Dispose();
    }

    private Uri Peer => new($"http://127.0.0.1:{_port}");

    [Fact]
    public async Task CopiesTheModelFromAPeerWhenTheHubIsUnreachable()
    {
        var hub = new HubSource(_http, new HubOptions(new Uri($"http://127.0.0.1:{Ports.Free()}"), null), new ModelReference("exo", "exo-tiny", "main"));
        var destination = _temp.File("exo-tiny");
        var options = new DownloadOptions { RetryDelay = TimeSpan.FromMilliseconds(20) };
        var result = await new ModelDownloader(options).DownloadAsync([new PeerSource(_http, Peer, "exo-tiny", Secret), hub], destination, null, CancellationToken.None);

        foreach (var file in Directory.GetFiles(RepositoryPaths.ShippedModel))
            Assert.True(File.ReadAllBytes(file).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(destination, Path.GetFileName(file)))), file);
        Assert.All(result.Files, f => Assert.StartsWith("peer ", f.Source));
    }

    [Fact]
    public async Task ListsOnlyRegularFilesInsideTheFolder()
    {
        var listing = await new PeerSource(_http, Peer, "traps", Secret).ListAsync(CancellationToken.None);
        Assert.Equal(["config.json", "sub/inner.txt"], listing.Files.Select(f => f.Path));
        Assert.Equal(FakeHub.Sha256("{}"u8.ToArray()), listing.Files[0].Sha256);
    }

    [Fact]
    public async Task RefusesAMissingOrWrongSecret()
    {
        var none = await Assert.ThrowsAsync<ModelSourceException>(() => new PeerSource(_http, Peer, "exo-tiny", null).ListAsync(CancellationToken.None));
        Assert.Contains("401", none.Message);
        Assert.Contains("Cluster__Secret", none.Message);
        await Assert.ThrowsAsync<ModelSourceException>(() => new PeerSource(_http, Peer, "exo-tiny", "wrong").ListAsync(CancellationToken.None));

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(Peer, "/v1/models/exo-tiny/files/config.json"));
        using var response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Theory]
    [InlineData("/v1/models/traps/files/escape.txt")]
    [InlineData("/v1/models/traps/files/escape-dir/secret.txt")]
    [InlineData("/v1/models/traps/files/.hidden")]
    [InlineData("/v1/models/traps/files/weights.bin.partial")]
    [InlineData("/v1/models/traps/files/../../secret.txt")]
    [InlineData("/v1/models/traps/files/sub/../../traps/config.json")]
    [InlineData("/v1/models/traps/files/..%2F..%2Fsecret.txt")]
    [InlineData("/v1/models/traps/files/%2E%2E/%2E%2E/etc/passwd")]
    [InlineData("/v1/models/traps/files//etc/passwd")]
    [InlineData("/v1/models/traps/files/%2Fetc%2Fpasswd")]
    [InlineData("/v1/models/..%2Ftraps/files/config.json")]
    [InlineData("/v1/models/traps/files/sub")]
    public async Task RefusesPathsThatLeadOutsideTheFolder(string target)
    {
        // Sent byte for byte over a socket: HttpClient would resolve the dots before sending.
        var (status, body) = await RawGetAsync(target);
        Assert.True(status is 400 or 404, $"{target}: {status} {body}");
        Assert.DoesNotContain(Outside, body);
        Assert.DoesNotContain("root:", body);
    }

    [Fact]
    public async Task ServesFilesInSubfoldersWithRanges()
    {
        var (status, body) = await RawGetAsync("/v1/models/traps/files/sub/inner.txt", "Range: bytes=1-3\r\n");
        Assert.Equal(206, status);
        Assert.Equal("nne", body);
    }

    private async Task<(int Status, string Body)> RawGetAsync(string target, string headers = "")
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{ClusterSecret.Header}: {Secret}\r\n{headers}Connection: close\r\n\r\n"));
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var response = await reader.ReadToEndAsync();
        var status = int.Parse(response.Split(' ', 3)[1]);
        return (status, response[(response.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..]);
    }
}
