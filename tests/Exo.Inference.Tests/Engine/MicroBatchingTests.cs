using Exo.Inference.Model;
using Exo.Inference.Pipeline;
using Exo.Inference.Sampling;
using Exo.Inference.Tests.Support;

namespace Exo.Inference.Tests.Engine;

/// <summary>What each step of a ring's stage takes: a share of the open requests, so that micro-batches follow one
/// another round the ring instead of one batch travelling with every stage but one idle.</summary>
public sealed class MicroBatchingTests
{
    private static readonly string Folder = RepositoryPaths.Fixture("llama-tiny");

    [Theory]
    [InlineData(0, 3, 1)]
    [InlineData(1, 3, 1)]  // a single stream is never held back
    [InlineData(2, 3, 1)]
    [InlineData(3, 3, 1)]
    [InlineData(4, 3, 2)]
    [InlineData(32, 3, 11)]
    [InlineData(32, 4, 8)]
    [InlineData(33, 4, 9)]
    [InlineData(32, 1, 32)] // a 1-stage ring keeps one batch
    public void AStepTakesTheRingsShareOfTheOpenRequests(int open, int stages, int expected) =>
        Assert.Equal(expected, MicroBatching.SequenceLimit(open, stages));

    [Fact]
    public void NonsenseCountsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MicroBatching.SequenceLimit(-1, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => MicroBatching.SequenceLimit(4, 0));
    }

    [Theory]
    [InlineData(3, new[] { 1, 3, 3 })]
    [InlineData(2, new[] { 1, 4, 2 })]
    [InlineData(1, new[] { 1, 6 })]
    public async Task WaitingDecodesSplitIntoTheRingsShare(int ringStages, int[] batchSizes)
    {
        var batches = await Batches(ringStages, maxBatchRows: 512, [[5], [7], [9], [11], [13], [15], [17]]);
        // Oldest first: r0 alone (it was running while the others came), then the rest in arrival order.
        Assert.Equal(batchSizes, batches.Select(b => b.Length));
        Assert.Equal(Enumerable.Range(0, 7).Select(i => $"r{i}"), batches.SelectMany(b => b.Select(s => s.Id)));
    }

    [Fact]
    public async Task PrefillRowsStayBoundedAsTheSequencesAre()
    {
        // 5 open on a 2-stage ring: at most 3 sequences a step, and at most 8 rows.
        var batches = await Batches(ringStages: 2, maxBatchRows: 8, [[1], [1, 2, 3, 4, 5, 6], [1, 2, 3], [4], [5]]);
        Assert.Equal(
            [["r0:1"], ["r1:6"], ["r2:3", "r3:1", "r4:1"]],
            batches.Select(b => b.Select(s => $"{s.Id}:{s.Rows}").ToArray()).ToArray());
    }

    /// <summary>
    /// Opens one request per prompt on the first stage of a ring of <paramref name="ringStages"/>, submits the first
    /// prompt and, while its step runs, all the others; returns each step's sequences (request id and rows).
    /// </summary>
    private static async Task<List<(string Id, int Rows)[]>> Batches(int ringStages, int maxBatchRows, int[][] prompts)
    {
        using var model = ModelStage.Load(Folder, new LayerRange(0, 2));
        using var stage = new GatedStage(model);
        await using var runtime = new StageRuntime(stage, 1 << 24, maxBatchRows: maxBatchRows) { RingStages = ringStages };
        for (var i = 0; i < prompts.Length; i++)
            runtime.Open($"r{i}", new RequestOptions(32, SamplingParameters.Greedy, 8, new HashSet<int>(), prompts[i]));

        runtime.Submit(new StageWork("r0", prompts[0], null, prompts[0].Length));
        await stage.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        for (var i = 1; i < prompts.Length; i++) runtime.Submit(new StageWork($"r{i}", prompts[i], null, prompts[i].Length));
        stage.Release();

        var ids = new List<string>();
        for (var i = 0; i < prompts.Length; i++)
            ids.Add(Assert.IsType<HiddenResult>(await runtime.Results.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30))).RequestId);

        // Results come in step order, so they name each step's sequences.
        var batches = new List<(string, int)[]>();
        var at = 0;
        foreach (var rows in stage.Batches)
        {
            batches.Add(rows.Select((r, j) => (ids[at + j], r)).ToArray());
            at += rows.Length;
        }

        return batches;
    }

    /// <summary>A real stage whose first step waits until the test releases it, recording each step's rows per sequence.</summary>
    private sealed class GatedStage(IModelStage inner) : IModelStage
    {
        private readonly ManualResetEventSlim _released = new();

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public List<int[]> Batches { get; } = [];
        public ModelConfig Config => inner.Config;
        public LayerRange Layers => inner.Layers;
        public string Backend => inner.Backend;
        public long BytesPerToken => inner.BytesPerToken;
        public bool BatchInvariant => inner.BatchInvariant;

        public void Release() => _released.Set();

        public KvCache CreateCache(int capacity) => inner.CreateCache(capacity);

        public int ForwardTokens(ReadOnlySpan<SequenceChunk> batch, ReadOnlySpan<int> tokens, Span<float> output,
            LogitRows logitRows = LogitRows.LastOfEachSequence, HiddenStateObserver? observe = null)
        {
            var rows = new int[batch.Length];
            for (var i = 0; i < batch.Length; i++) rows[i] = batch[i].Count;
            Batches.Add(rows);
            Entered.TrySetResult();
            _released.Wait(TimeSpan.FromSeconds(30));
            return inner.ForwardTokens(batch, tokens, output, logitRows, observe);
        }

        public int ForwardHidden(ReadOnlySpan<SequenceChunk> batch, ReadOnlySpan<float> hidden, Span<float> output,
            LogitRows logitRows = LogitRows.LastOfEachSequence, HiddenStateObserver? observe = null) => throw new NotSupportedException();

        public void Dispose() => _released.Dispose();
    }
}
