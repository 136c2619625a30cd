using Exo.Inference.Generation;
using Exo.Inference.Model;
using Exo.Inference.Pipeline;
using Exo.Inference.Sampling;
using Exo.Inference.Tests.Support;
using Exo.Inference.Verification;

namespace Exo.Inference.Tests.Engine;

public sealed class StageRuntimeTests
{
    private static readonly string Folder = RepositoryPaths.Fixture("llama-tiny");

    private static RequestOptions Greedy(int[] prompt, int maxNew) =>
        new(prompt.Length + maxNew, SamplingParameters.Greedy, maxNew, new HashSet<int>(), prompt);

    /// <summary>
    /// Drives requests round a ring of runtimes as the shard workers do: hidden states go to the next stage, each
    /// sampled token goes back to the first. Returns each request's tokens.
    /// </summary>
    private static async Task<Dictionary<string, List<int>>> RunRing(StageRuntime[] ring, Dictionary<string, int[]> prompts, int maxNew)
    {
        var tokens = prompts.Keys.ToDictionary(k => k, _ => new List<int>());
        foreach (var (id, prompt) in prompts)
        {
            foreach (var stage in ring) stage.Open(id, Greedy(prompt, maxNew));
        }

        foreach (var (id, prompt) in prompts) ring[0].Submit(new StageWork(id, prompt, null, prompt.Length));

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var finished = 0;
        var forwarders = ring[..^1].Select((stage, s) => Task.Run(async () =>
        {
            await foreach (var result in stage.Results.ReadAllAsync(timeout.Token))
            {
                var hidden = Assert.IsType<HiddenResult>(result);
                ring[s + 1].Submit(new StageWork(hidden.RequestId, null, hidden.Hidden, hidden.Rows));
            }
        })).ToList();

        await foreach (var result in ring[^1].Results.ReadAllAsync(timeout.Token))
        {
            var token = Assert.IsType<TokenResult>(result);
            tokens[token.RequestId].Add(token.Token);
            Assert.Equal(tokens[token.RequestId].Count - 1, token.Index);
            if (token.Finish is not null)
            {
                Assert.Equal(FinishReason.Length, token.Finish);
                foreach (var stage in ring[..^1]) Assert.True(stage.Close(token.RequestId));
                if (++finished == prompts.Count) break;
                continue;
            }

            ring[0].Submit(new StageWork(token.RequestId, [token.Token], null, 1));
        }

        return tokens;
    }

    [Fact]
    public async Task ConcurrentRequestsRoundARingGiveTheReferenceTokens()
    {
        var reference = ReferenceFile.Load(Folder);
        var prompts = Enumerable.Range(0, 3).ToDictionary(i => $"r{i}", i => reference.Cases[i].InputIds);

        using var a = ModelStage.Load(Folder, new LayerRange(0, 1));
        using var b = ModelStage.Load(Folder, new LayerRange(1, 3));
        using var c = ModelStage.Load(Folder, new LayerRange(3, 4));
        // As a shard worker sets them: three requests on a 3-stage ring run as micro-batches of one.
        StageRuntime[] ring = [new(a, 1 << 24) { RingStages = 3 }, new(b, 1 << 24) { RingStages = 3 }, new(c, 1 << 24) { RingStages = 3 }];
        try
        {
            var tokens = await RunRing(ring, prompts, 24);
            for (var i = 0; i < 3; i++) Assert.Equal(reference.Cases[i].GreedyNewTokens, tokens[$"r{i}"]);
            Assert.All(ring, r => Assert.Equal(0, r.ActiveRequests));
            Assert.All(ring, r => Assert.Equal(0, r.KvBytesInUse));
        }
        finally
        {
            foreach (var r in ring) await r.DisposeAsync();
        }
    }

    [Fact]
    public async Task AdmissionIsBoundedByTheKvBudget()
    {
        using var model = ModelStage.Load(Folder);
        int[] prompt = [1, 2, 3];
        await using var runtime = new StageRuntime(model, 1);
        var perRequest = runtime.KvBytesFor(8);
        await using var bounded = new StageRuntime(model, perRequest * 2);
        Assert.Equal((16L, 16L), (bounded.CapacityTokens, bounded.FreeTokens));

        bounded.Open("a", Greedy(prompt, 5));
        Assert.Equal(8L, bounded.FreeTokens);
        bounded.Open("b", Greedy(prompt, 5));
        Assert.Equal((16L, 0L), (bounded.CapacityTokens, bounded.FreeTokens));
        var refused = Assert.Throws<StageCapacityException>(() => bounded.Open("c", Greedy(prompt, 5)));
        Assert.Contains("KV cache free", refused.Message);
        Assert.True(bounded.Close("a"));
        Assert.False(bounded.Close("a"));
        bounded.Open("c", Greedy(prompt, 5));
        Assert.Equal(perRequest * 2, bounded.KvBytesInUse);
        Assert.Throws<ArgumentException>(() => bounded.Open("c", Greedy(prompt, 5)));
    }

    [Fact]
    public async Task WorkForUnknownOrClosedRequestsFailsAlone()
    {
        using var model = ModelStage.Load(Folder);
        await using var runtime = new StageRuntime(model, 1 << 24);
        runtime.Submit(new StageWork("ghost", [1, 2], null, 2));
        var failed = Assert.IsType<FailedResult>(await runtime.Results.ReadAsync());
        Assert.Equal("ghost", failed.RequestId);

        runtime.Open("ok", Greedy([1, 2], 1));
        runtime.Submit(new StageWork("ok", [1, 2], null, 2));
        var token = Assert.IsType<TokenResult>(await runtime.Results.ReadAsync());
        Assert.Equal(FinishReason.Length, token.Finish);
        Assert.Equal(0, runtime.ActiveRequests); // the last stage frees a finished request itself

        runtime.Open("long", Greedy([1, 2], 1)); // a context of 3 positions
        runtime.Submit(new StageWork("long", [1, 2, 3, 4], null, 4));
        var overflow = Assert.IsType<FailedResult>(await runtime.Results.ReadAsync());
        Assert.Contains("exceeds its context of 3", overflow.Error);
    }

    [Fact]
    public async Task MalformedWorkIsRefused()
    {
        using var first = ModelStage.Load(Folder, new LayerRange(0, 2));
        using var second = ModelStage.Load(Folder, new LayerRange(2, 4));
        await using var a = new StageRuntime(first, 1 << 24);
        await using var b = new StageRuntime(second, 1 << 24);
        Assert.Throws<ArgumentException>(() => a.Submit(new StageWork("x", null, new float[64], 1)));
        Assert.Throws<ArgumentException>(() => b.Submit(new StageWork("x", [1], null, 1)));
        Assert.Throws<ArgumentException>(() => b.Submit(new StageWork("x", null, new float[65], 1)));
        Assert.Throws<ArgumentException>(() => a.Submit(new StageWork("x", [1, 2], null, 3)));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Open("x", Greedy([1], 100_000)));
    }

    [Fact]
    public async Task DisposingTheRuntimeFreesTheCachesOfOpenRequests()
    {
        // An unloaded stage must give back its requests' KV caches: on a GPU they are device memory.
        using var model = ModelStage.Load(Folder);
        using var stage = new CacheCountingStage(model);
        var runtime = new StageRuntime(stage, 1 << 24);
        runtime.Open("a", Greedy([1, 2], 4));
        runtime.Open("b", Greedy([3], 4));
        Assert.True(runtime.Close("b"));
        Assert.Equal(1, stage.Live);
        await runtime.DisposeAsync();
        Assert.Equal(0, stage.Live);
        Assert.Equal(0, runtime.ActiveRequests);
        Assert.Equal(0, runtime.KvBytesInUse);
    }

    /// <summary>A stage that only hands out caches, counting those not yet disposed.</summary>
    private sealed class CacheCountingStage(IModelStage inner) : IModelStage
    {
        private int _live;

        public int Live => Volatile.Read(ref _live);
        public ModelConfig Config => inner.Config;
        public LayerRange Layers => inner.Layers;
        public string Backend => inner.Backend;
        public long BytesPerToken => inner.BytesPerToken;
        public bool BatchInvariant => inner.BatchInvariant;

        public KvCache CreateCache(int capacity)
        {
            Interlocked.Increment(ref _live);
            return new CountedCache(this, capacity);
        }

        public int ForwardTokens(ReadOnlySpan<SequenceChunk> batch, ReadOnlySpan<int> tokens, Span<float> output,
            LogitRows logitRows = LogitRows.LastOfEachSequence, HiddenStateObserver? observe = null) => throw new NotSupportedException();

        public int ForwardHidden(ReadOnlySpan<SequenceChunk> batch, ReadOnlySpan<float> hidden, Span<float> output,
            LogitRows logitRows = LogitRows.LastOfEachSequence, HiddenStateObserver? observe = null) => throw new NotSupportedException();

        public void Dispose()
        {
        }

        private sealed class CountedCache(CacheCountingStage owner, int capacity) : KvCache(capacity)
        {
            private int _disposed;

            public override void Dispose()
            {
                if (Interlocked.Exchange(ref _disposed, 1) == 0) Interlocked.Decrement(ref owner._live);
                base.Dispose();
            }
        }
    }
}
