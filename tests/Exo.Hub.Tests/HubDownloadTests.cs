using System.Diagnostics;
using Xunit.Abstractions;

namespace Exo.Hub.Tests;

/// <summary>The downloader against the fake hub serving models/exo-tiny: pulls, resumes, refusals and error messages.</summary>
public sealed class HubDownloadTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Weights = "model.safetensors";

    private readonly TempDirectory _temp = new();
    private readonly HttpClient _http = HubHttp.CreateClient();
    private FakeHub _hub = null!;

    public async Task InitializeAsync() => _hub = await FakeHub.StartAsync(RepositoryPaths.ShippedModel);

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        _http.Dispose();
        _temp.Dispose();
    }

    private static readonly DownloadOptions Fast = new() { RetryDelay = TimeSpan.FromMilliseconds(20), IdleTimeout = TimeSpan.FromSeconds(10) };

    private HubSource Hub(string? token = null, ModelReference? model = null) => new(_http, new HubOptions(_hub.Endpoint, token), model ?? _hub.Model);

    private string Destination => _temp.File("model");

    private void AssertSameFiles()
    {
        foreach (var (name, bytes) in _hub.Files) Assert.True(bytes.AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(Destination, name))), name);
        Assert.Empty(Directory.GetFiles(Destination, "*" + ModelDownloader.PartialSuffix));
        Assert.False(File.Exists(Path.Combine(Destination, ".gitattributes")));
    }

    [Fact]
    public async Task PullsEveryFileAndSendsTheTokenOnlyToTheHub()
    {
        _hub.RequiredToken = "hf_test_token";
        var updates = new List<DownloadProgress>();
        var clock = Stopwatch.StartNew();
        var result = await new ModelDownloader(Fast).DownloadAsync([Hub("hf_test_token")], Destination, new Recorder(updates), CancellationToken.None);
        clock.Stop();

        AssertSameFiles();
        Assert.Equal(FakeHub.Commit, result.Commit);
        var size = _hub.Files.Values.Sum(b => (long)b.Length);
        Assert.Equal(size, result.BytesTransferred);
        Assert.Equal(_hub.Files.Count, result.Files.Count);
        output.WriteLine($"pulled {size / 1e6:0.0} MB in {clock.Elapsed.TotalSeconds:0.000} s: {size / 1e6 / clock.Elapsed.TotalSeconds:0} MB/s");

        // The LFS file came from the CDN port, which never saw the token; every hub request carried it.
        var requests = _hub.Requests;
        Assert.Contains(requests, r => r.Port == _hub.CdnPort && r.Path.EndsWith(Weights, StringComparison.Ordinal));
        Assert.All(requests.Where(r => r.Port == _hub.CdnPort), r => Assert.False(r.Authorized));
        Assert.All(requests.Where(r => r.Port == _hub.HubPort), r => Assert.True(r.Authorized));

        lock (updates)
        {
            Assert.Equal(size, updates.Max(u => u.Done));
            Assert.All(updates, u => Assert.Equal(size, u.Total));
            Assert.Contains(updates, u => u.File == Weights && u.FileDone == u.FileTotal && u.FileTotal == _hub.Files[Weights].Length);
        }
    }

    [Fact]
    public async Task ResumesWithARangeRequestAfterADroppedConnection()
    {
        const int drop = 10_000_000;
        _hub.DropOnce = (Weights, drop);
        await new ModelDownloader(Fast).DownloadAsync([Hub()], Destination, null, CancellationToken.None);
        AssertSameFiles();

        var cdn = _hub.Requests.Where(r => r.Port == _hub.CdnPort && r.Path.EndsWith(Weights, StringComparison.Ordinal)).ToList();
        Assert.Equal(2, cdn.Count);
        Assert.Null(cdn[0].Range);
        var resumedAt = long.Parse(cdn[1].Range!["bytes=".Length..].Split('-')[0]);
        Assert.InRange(resumedAt, 1, drop);
        var size = _hub.Files[Weights].Length;
        // What arrived before the drop is kept: not more than the dropped request's bytes are sent twice.
        Assert.InRange(_hub.Served(Weights), size, size + drop);
        Assert.Equal(drop - resumedAt, _hub.Served(Weights) - size);
    }

    [Fact]
    public async Task ResumesThePartialFileOfAnInterruptedRun()
    {
        var half = _hub.Files[Weights].Length / 2;
        Directory.CreateDirectory(Destination);
        File.WriteAllBytes(Path.Combine(Destination, Weights + ModelDownloader.PartialSuffix), _hub.Files[Weights][..half]);

        var result = await new ModelDownloader(Fast).DownloadAsync([Hub()], Destination, null, CancellationToken.None);

        AssertSameFiles();
        var cdn = Assert.Single(_hub.Requests, r => r.Port == _hub.CdnPort && r.Path.EndsWith(Weights, StringComparison.Ordinal));
        Assert.Equal($"bytes={half}-{_hub.Files[Weights].Length - 1}", cdn.Range);
        Assert.Equal(_hub.Files.Values.Sum(b => (long)b.Length) - half, result.BytesTransferred);
    }

    [Fact]
    public async Task ACorruptedFileIsRefusedAndNothingIsLeftThatLooksComplete()
    {
        _hub.Corrupt = Weights;
        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => new ModelDownloader(Fast).DownloadAsync([Hub()], Destination, null, CancellationToken.None));

        Assert.Contains(Weights, error.Message);
        Assert.Contains(FakeHub.Sha256(_hub.Files[Weights]), error.Message);
        var corrupted = (byte[])_hub.Files[Weights].Clone();
        corrupted[corrupted.Length / 2] ^= 0xFF;
        Assert.Contains(FakeHub.Sha256(corrupted), error.Message);
        Assert.False(File.Exists(Path.Combine(Destination, Weights)));
        Assert.False(File.Exists(Path.Combine(Destination, Weights + ModelDownloader.PartialSuffix)));
    }

    [Fact]
    public async Task AServerThatSendsAnotherLengthThanListedIsRefused()
    {
        _hub.Truncate = "tokenizer.json";
        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => new ModelDownloader(Fast).DownloadAsync([Hub()], Destination, null, CancellationToken.None));
        var size = _hub.Files["tokenizer.json"].Length;
        Assert.Contains($"sends {size - 100} bytes for tokenizer.json but listed {size}", error.Message);
        Assert.False(File.Exists(Path.Combine(Destination, "tokenizer.json")));
    }

    [Fact]
    public async Task AGatedModelWithoutATokenSaysToSetHfTokenAndAcceptTheLicense()
    {
        _hub.RequiredToken = "hf_test_token";
        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => new ModelDownloader(Fast).DownloadAsync([Hub()], Destination, null, CancellationToken.None));
        Assert.Contains("401", error.Message);
        Assert.Contains("set HF_TOKEN", error.Message);
        Assert.Contains($"accept the model's license on {_hub.Endpoint.AbsoluteUri.TrimEnd('/')}/exo/exo-tiny", error.Message);

        var wrong = await Assert.ThrowsAsync<ModelDownloadException>(() => new ModelDownloader(Fast).DownloadAsync([Hub("hf_wrong")], Destination, null, CancellationToken.None));
        Assert.Contains("HF_TOKEN does not give access to exo/exo-tiny", wrong.Message);
    }

    [Fact]
    public async Task AMissingRepositoryOrRevisionSaysWhichDoesNotExist()
    {
        var repo = await Assert.ThrowsAsync<ModelDownloadException>(() =>
            new ModelDownloader(Fast).DownloadAsync([Hub(model: ModelReference.Parse("exo/no-such-model"))], Destination, null, CancellationToken.None));
        Assert.Contains("404", repo.Message);
        Assert.Contains("repository exo/no-such-model or its revision 'main' does not exist", repo.Message);

        var revision = await Assert.ThrowsAsync<ModelDownloadException>(() =>
            new ModelDownloader(Fast).DownloadAsync([Hub(model: ModelReference.Parse("exo/exo-tiny@v9"))], Destination, null, CancellationToken.None));
        Assert.Contains("exo/exo-tiny has no revision 'v9'", revision.Message);
    }

    [Fact]
    public async Task AHubThatDoesNotAnswerTimesOut()
    {
        _hub.Silent = true;
        var options = Fast with { IdleTimeout = TimeSpan.FromMilliseconds(300), MaxAttempts = 2 };
        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => new ModelDownloader(options).DownloadAsync([Hub()], Destination, null, CancellationToken.None));
        Assert.Contains("timed out: no answer within 0.3 s", error.Message);
    }

    [Fact]
    public async Task AnUnreachableHubIsNamedWithWhy()
    {
        var closed = new HubSource(_http, new HubOptions(new Uri($"http://127.0.0.1:{Ports.Free()}"), null), _hub.Model);
        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => new ModelDownloader(Fast).DownloadAsync([closed], Destination, null, CancellationToken.None));
        Assert.Contains("cannot reach", error.Message);
        Assert.Contains(closed.Name, error.Message);
    }

    /// <summary>Records on the reporting thread, as a terminal display does.</summary>
    private sealed class Recorder(List<DownloadProgress> updates) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value)
        {
            lock (updates) updates.Add(value);
        }
    }
}
