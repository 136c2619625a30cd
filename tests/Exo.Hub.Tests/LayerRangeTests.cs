using System.Text.RegularExpressions;
using Exo.Inference.Weights;
using Xunit.Abstractions;

namespace Exo.Hub.Tests;

/// <summary>
/// Fetching only a layer range's tensors of models/exo-tiny (8 layers, tied embeddings) from the fake hub: the bytes
/// moved are that range's share, and the file written loads with the engine's reader, each tensor equal to the original.
/// </summary>
public sealed partial class LayerRangeTests(ITestOutputHelper output) : FakeHubTest
{
    private const string Weights = "model.safetensors";

    private readonly HttpClient _http = HubHttp.CreateClient();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _http.Dispose();
    }

    /// <summary>What a stage of layers [first, end) needs: the embeddings on the first stage, norm and head on the last (the embeddings again when tied).</summary>
    private static Func<string, bool> Stage(int first, int end, bool isFirst, bool isLast) => name =>
        LayerIndex().Match(name) is { Success: true } m ? int.Parse(m.Groups[1].Value) is var layer && layer >= first && layer < end
        : name == "model.embed_tokens.weight" ? isFirst || isLast
        : name is "model.norm.weight" or "lm_head.weight" && isLast;

    [GeneratedRegex(@"^model\.layers\.(\d+)\.")]
    private static partial Regex LayerIndex();

    [Theory]
    [InlineData(0, 4)]
    [InlineData(4, 8)]
    public async Task FetchesOnlyTheStagesTensorsAndWritesAFileThatLoads(int first, int end)
    {
        var wanted = Stage(first, end, isFirst: first == 0, isLast: end == 8);
        var destination = Scratch.File($"stage-{first}");
        var options = new DownloadOptions { Files = path => path == Weights, Tensors = wanted };
        var result = await new ModelDownloader(options).DownloadAsync(
            [new HubSource(_http, new HubOptions(FakeHub.Endpoint, null), FakeHub.Model)], destination, null, CancellationToken.None);

        using var original = SafetensorsFile.Open(Path.Combine(RepositoryPaths.ShippedModel, Weights));
        using var written = SafetensorsFile.Open(Path.Combine(destination, Weights));
        var names = original.Names.Where(wanted).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(names, written.Names.Order(StringComparer.Ordinal));
        Assert.Contains("model.embed_tokens.weight", names);
        foreach (var name in names)
        {
            var (a, b) = (original.Get(name), written.Get(name));
            Assert.Equal(a.Type, b.Type);
            Assert.Equal(a.Shape, b.Shape);
            for (var row = 0; row < a.Rows; row++) Assert.True(a.RowBytes(row).SequenceEqual(b.RowBytes(row)), $"{name} row {row}");
        }

        // The header (two small requests) and the wanted tensors' bytes; gaps between wanted tensors are the only extra.
        var tensorBytes = names.Sum(n => original.Get(n).ByteLength);
        var size = new FileInfo(Path.Combine(RepositoryPaths.ShippedModel, Weights)).Length;
        Assert.InRange(result.BytesTransferred, tensorBytes, tensorBytes + original.DataStart + 64 * 1024);
        Assert.True(result.Files.Single().Subset);
        output.WriteLine($"stage [{first},{end}): {names.Count} tensors, {result.BytesTransferred} bytes moved of {size} ({100.0 * result.BytesTransferred / size:0.0}%)");
    }

    [Fact]
    public async Task ASplitModelsIndexSkipsTheShardsThatHoldNoneOfTheStagesTensors()
    {
        // exo-tiny as two shards: embeddings and layers 0-3, then layers 4-7 and the norm, with the index naming them.
        var folder = Directory.CreateDirectory(Scratch.File("sharded")).FullName;
        var original = SafetensorsHeader.TryRead(Path.Combine(RepositoryPaths.ShippedModel, Weights))!;
        var bytes = File.ReadAllBytes(Path.Combine(RepositoryPaths.ShippedModel, Weights));
        var firstHalf = Stage(0, 4, isFirst: true, isLast: false);
        var map = new Dictionary<string, string>();
        foreach (var (shard, inShard) in new[] { ("model-00001-of-00002.safetensors", firstHalf), ("model-00002-of-00002.safetensors", name => !firstHalf(name)) })
        {
            var tensors = original.Tensors.Where(t => inShard(t.Name)).ToList();
            using var file = File.Create(Path.Combine(folder, shard));
            file.Write(original.Write(tensors));
            foreach (var t in tensors)
            {
                file.Write(bytes, (int)(original.DataStart + t.Begin), (int)t.Length);
                map[t.Name] = shard;
            }
        }

        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"), System.Text.Json.JsonSerializer.Serialize(new { metadata = new { }, weight_map = map }));
        await using var hub = await FakeHub.StartAsync(folder);
        var destination = Scratch.File("stage");
        var options = new DownloadOptions { Tensors = Stage(1, 3, isFirst: false, isLast: false) };
        var result = await new ModelDownloader(options).DownloadAsync([new HubSource(_http, new HubOptions(hub.Endpoint, null), hub.Model)], destination, null, CancellationToken.None);

        Assert.Equal(["model-00001-of-00002.safetensors", "model.safetensors.index.json"], result.Files.Select(f => f.Path));
        Assert.DoesNotContain(hub.Requests, r => r.Path.Contains("00002-of", StringComparison.Ordinal));
        using var written = SafetensorsFile.Open(Path.Combine(destination, "model-00001-of-00002.safetensors"));
        Assert.Equal(18, written.Names.Count);
        Assert.All(written.Names, name => Assert.Matches(@"^model\.layers\.[12]\.", name));
    }

    [Fact]
    public async Task AFileWithNoneOfTheWantedTensorsIsLeftOut()
    {
        var options = new DownloadOptions { Files = path => path is Weights or "config.json", Tensors = name => name.StartsWith("vision_tower.", StringComparison.Ordinal) };
        var destination = Scratch.File("none");
        var result = await new ModelDownloader(options).DownloadAsync([new HubSource(_http, new HubOptions(FakeHub.Endpoint, null), FakeHub.Model)], destination, null, CancellationToken.None);
        Assert.Equal(["config.json"], result.Files.Select(f => f.Path));
        Assert.False(File.Exists(Path.Combine(destination, Weights)));
    }

    [Fact]
    public async Task ASecondRunKeepsWhatTheFirstWrote()
    {
        var destination = Scratch.File("stage");
        var options = new DownloadOptions { Files = path => path == Weights, Tensors = Stage(0, 4, true, false) };
        var source = new HubSource(_http, new HubOptions(FakeHub.Endpoint, null), FakeHub.Model);
        await new ModelDownloader(options).DownloadAsync([source], destination, null, CancellationToken.None);
        var again = await new ModelDownloader(options).DownloadAsync([source], destination, null, CancellationToken.None);
        Assert.Null(Assert.Single(again.Files).Source);
        Assert.True(again.BytesTransferred < 10_000, $"{again.BytesTransferred} bytes moved again");
    }
}
