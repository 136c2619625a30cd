using System.Diagnostics;
using Xunit.Abstractions;

namespace Exo.Hub.Tests;

/// <summary>The downloader against the fake hub serving models/exo-tiny: pulls, resumes, refusals and error messages.</summary>
public sealed class HubDownloadTests(ITestOutputHelper output) : FakeHubTest
{
    private const string Weights = "model.safetensors";

    private readonly HttpClient _http = HubHttp.CreateClient();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _http.Dispose();
    }

    private static readonly DownloadOptions Fast = new() { RetryDelay = TimeSpan.FromMilliseconds(20), IdleTimeout = TimeSpan.FromSeconds(10) };

    private HubSource Hub(string? token = null, ModelReference? model = null) => new(_http, new HubOptions(FakeHub.Endpoint, token), model ?? FakeHub.Model);

    private string Destination => Scratch.File("model");

    private void AssertSameFiles()
    {
        foreach (var (name, bytes) in FakeHub.Files) Assert.True(bytes.AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(Destination, name))), name);
        Assert.Empty(Directory.GetFiles(Destination, "*" + ModelDownloader.PartialSuffix));
        Assert.False(File.Exists(Path.Combine(Destination, ".gitattributes")));
    }

    [Fact]
    public async Task PullsEveryFileAndSendsTheTokenOnlyToTheHub()
    {
        FakeHub.RequiredToken = "hf_test_token";
        var updates = new List<DownloadProgress>();
        var clock = Stopwatch.StartNew();
        var result = await new ModelDownloader(Fast).DownloadAsync([Hub("hf_test_token")], Destination, new Recorder(updates), CancellationToken.None);
        clock.Stop();

        AssertSameFiles();
        Assert.Equal(FakeHub.Commit, result.Commit);
        var size = FakeHub.Files.Values.Sum(b => (long)b.Length);
        Assert.Equal(size, result.BytesTransferred);
        Assert.Equal(FakeHub.Files.Count, result.Files.Count);
        output.WriteLine($"pulled {size / 1e6:0.0} MB in {clock.Elapsed.TotalSeconds:0.000} s: {size / 1e6 / clock.Elapsed.TotalSeconds:0} MB/s");

        // The LFS file came from the CDN port, which never saw the token; every hub request carried it.
        var requests = FakeHub.Requests;
        Assert.Contains(requests, r => r.Port == FakeHub.CdnPort && r.Path.EndsWith(Weights, StringComparison.Ordinal));
        Assert.All(requests.Where(r => r.Port == FakeHub.CdnPort), r => Assert.False(r.Authorized));
        Assert.All(requests.Where(r => r.Port == FakeHub.HubPort), r => Assert.True(r.Authorized));

        lock (updates)
        {
            Assert.Equal(size, updates.Max(u => u.Done));
            Assert.All(updates, u => Assert.Equal(size, u.Total));
            Assert.Contains(updates, u => u.File == Weights && u.FileDone == u.FileTotal && u.FileTotal == FakeHub.Files[Weights].Length);
        }
    }

    [Fact]
    public async Task ResumesWithARangeRequestAfterADroppedConnection()
    {
        const int drop = 10_000_000;
        FakeHub.DropOnce = (Weights, drop);
        await new ModelDownloader(Fast).DownloadAsync([Hub()], Destination, null, CancellationToken.None);
        AssertSameFiles();

        var cdn = FakeHub.Requests.Where(r => r.Port == FakeHub.CdnPort && r.Path.EndsWith(Weights, StringComparison.Ordinal)).ToList();
        Assert.Equal(2, cdn.Count);
        Assert.Null(cdn[0].Range);
        var resumedAt = long.Parse(cdn[1].Range!["bytes=".Length..].Split('-')[0]);
        Assert.InRange(resumedAt, 1, drop);
        var size = FakeHub.Files[Weights].Length;
        // What arrived before the drop is kept: not more than the dropped request's bytes are sent twice.
        Assert.InRange(FakeHub.Served(Weights), size, size + drop);
        Assert.Equal(drop - resumedAt, FakeHub.Served(Weights) - size);
    }

    [Fact]
    public async Task ResumesThePartialFileOfAnInterruptedRun()
    {
        var half = FakeHub.Files[Weights].Length / 2;
        Directory.CreateDirectory(Destination);
        File.WriteAllBytes(Path.Combine(Destination, Weights + ModelDownloader.PartialSuffix), FakeHub.Files[Weights][..half]);

        var result = await new ModelDownloader(Fast).DownloadAsync([Hub()], Destination, null, CancellationToken.None);

        AssertSameFiles();
        var cdn = Assert.Single(FakeHub.Requests, r => r.Port == FakeHub.CdnPort && r.Path.EndsWith(Weights, StringComparison.Ordinal));
        Assert.Equal($"bytes={half}-{FakeHub.Files[Weights].Length - 1}", cdn.Range);
        Assert.Equal(FakeHub.Files.Values.Sum(b => (long)b.Length) - half, result.BytesTransferred);
    }

    [Fact]
    public async Task ACorruptedFileIsRefusedAndNothingIsLeftThatLooksComplete()
    {
        FakeHub.Corrupt = Weights;
        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => new ModelDownloader(Fast).DownloadAsync([Hub()], Destination, null, CancellationToken.None));

        Assert.Contains(Weights, error.Message);
        Assert.Contains(FakeHub.Sha256(FakeHub.Files[Weights]), error.Message);
        var corrupted = (byte[])FakeHub.Files[Weights].Clone();
        corrupted[corrupted.Length / 2] ^= 0xFF;
        Assert.Contains(FakeHub.Sha256(corrupted), error.Message);
        Assert.False(File.Exists(Path.Combine(Destination, Weights)));
        Assert.False(File.Exists(Path.Combine(Destination, Weights + ModelDownloader.PartialSuffix)));
    }

    [Fact]
    public async Task AServerThatSendsAnotherLengthThanListedIsRefused()
    {
        FakeHub.Truncate = "tokenizer.json";
        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => new ModelDownloader(Fast).DownloadAsync([Hub()], Destination, null, CancellationToken.None));
        var size = FakeHub.Files["tokenizer.json"].Length;
        Assert.Contains($"sends {size - 100} bytes for tokenizer.json but listed {size}", error.Message);
        Assert.False(File.Exists(Path.Combine(Destination, "tokenizer.json")));
    }

    [Fact]
    public async Task AGatedModelWithoutATokenSaysToSetHfTokenAndAcceptTheLicense()
    {
        FakeHub.RequiredToken = "hf_test_token";
        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => new ModelDownloader(Fast).DownloadAsync([Hub()], Destination, null, CancellationToken.None));
        Assert.Contains("401", error.Message);
        Assert.Contains("set HF_TOKEN", error.Message);
        Assert.Contains($"accept the model's license on {FakeHub.Endpoint.AbsoluteUri.TrimEnd('/')}/exo/exo-tiny", error.Message);

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
        FakeHub.Silent = true;
        var options = Fast with { IdleTimeout = TimeSpan.FromMilliseconds(300), MaxAttempts = 2 };
        var error = await Assert.ThrowsAsync<ModelDownloadException>(() => new ModelDownloader(options).DownloadAsync([Hub()], Destination, null, CancellationToken.None));
        Assert.Contains("timed out: no answer within 0.3 s", error.Message);
    }

    [Fact]
    public async Task AnUnreachableHubIsNamedWithWhy()
    {
        var closed = new HubSource(_http, new HubOptions(new Uri($"http://127.0.0.1:{Ports.Free()}"), null), FakeHub.Model);
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
