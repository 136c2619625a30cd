namespace Exo.Inference.Model;

/// <summary>A run of new positions for one sequence in a batch: <paramref name="Count"/> rows appended to its cache.</summary>
public readonly record struct SequenceChunk(KvCache Cache, int Count);

/// <summary>Which rows of the last stage's final hidden states go through the lm head.</summary>
public enum LogitRows
{
    /// <summary>The last row of each sequence: what a sampler needs.</summary>
    LastOfEachSequence,
    /// <summary>Every row: what verification needs.</summary>
    All,
}

/// <summary>Sees the hidden states at each layer boundary: boundary i is the input of layer i; boundary L the final norm.</summary>
public delegate void HiddenStateObserver(int boundary, ReadOnlySpan<float> hidden);

/// <summary>
/// One pipeline stage of a Llama-family transformer on one backend: layers [Start, End), plus the embeddings when it is
/// the first stage and the final norm and lm head when it is the last. The whole model is the stage [0, L). Inputs and
/// outputs are host memory; everything between (weights, KV caches, activations) lives where the backend computes.
/// </summary>
public interface IModelStage : IDisposable
{
    ModelConfig Config { get; }

    LayerRange Layers { get; }

    /// <summary>What computes, for logs and reports: e.g. "cpu fast-512, AVX-VNNI" or "vulkan NVIDIA H200".</summary>
    string Backend { get; }

    /// <summary>Weight bytes one decode step reads (see <see cref="StageWeights.BytesPerToken"/>).</summary>
    long BytesPerToken { get; }

    /// <summary>
    /// Whether a row's output is bit for bit the same whatever else is in its batch and however a sequence's positions
    /// are split into steps (one token at a time or a whole prompt at once).
    /// </summary>
    bool BatchInvariant { get; }

    /// <summary>A cache for one sequence of up to <paramref name="capacity"/> positions, in this stage's memory.</summary>
    KvCache CreateCache(int capacity);

    /// <summary>
    /// First stage: runs token ids [rows] of the batch's sequences (rows in batch order) and writes hidden states
    /// [rows, hidden], or on the last stage logits [<c>OutputRows</c>, vocab]. Returns the rows written.
    /// </summary>
    int ForwardTokens(ReadOnlySpan<SequenceChunk> batch, ReadOnlySpan<int> tokens, Span<float> output,
        LogitRows logitRows = LogitRows.LastOfEachSequence, HiddenStateObserver? observe = null);

    /// <summary>Later stages: runs hidden states [rows, hidden] from the previous stage; output as <see cref="ForwardTokens"/>.</summary>
    int ForwardHidden(ReadOnlySpan<SequenceChunk> batch, ReadOnlySpan<float> hidden, Span<float> output,
        LogitRows logitRows = LogitRows.LastOfEachSequence, HiddenStateObserver? observe = null);
}

/// <summary>What any stage's position in the model implies about its inputs and outputs.</summary>
public static class StageShape
{
    extension(IModelStage stage)
    {
        public bool IsFirst => stage.Layers.Start == 0;

        public bool IsLast => stage.Layers.End == stage.Config.LayerCount;

        /// <summary>The width of one output row: vocabulary logits on the last stage, hidden states elsewhere.</summary>
        public int OutputWidth => stage.IsLast ? stage.Config.VocabSize : stage.Config.HiddenSize;

        /// <summary>Rows of output the given batch produces: all rows, or on the last stage one per sequence for sampling.</summary>
        public int OutputRows(ReadOnlySpan<SequenceChunk> batch, LogitRows logitRows)
        {
            var rows = 0;
            foreach (var chunk in batch) rows += chunk.Count;
            return stage.IsLast && logitRows == LogitRows.LastOfEachSequence ? batch.Length : rows;
        }
    }

    /// <summary>
    /// Checks a batch against its caches and the rows given; returns the total rows and the longest capacity (what a
    /// backend sizes its activation buffers by, so that decoding step by step never reallocates).
    /// </summary>
    public static (int Rows, int LongestCapacity) Check(ReadOnlySpan<SequenceChunk> batch, int rows)
    {
        var total = 0;
        var longest = 0;
        foreach (var chunk in batch)
        {
            if (chunk.Count <= 0) throw new ArgumentException("every sequence in a batch needs at least one new position");
            if (chunk.Cache.Length + chunk.Count > chunk.Cache.Capacity)
                throw new InvalidOperationException($"the sequence's context is full: {chunk.Cache.Length} + {chunk.Count} positions exceed its {chunk.Cache.Capacity}");
            total += chunk.Count;
            longest = Math.Max(longest, chunk.Cache.Capacity);
        }

        if (total != rows) throw new ArgumentException($"the batch declares {total} positions but {rows} rows were given");
        return (total, longest);
    }

    /// <summary>Checks token ids against the vocabulary before any backend reads an embedding row with them.</summary>
    public static void CheckTokens(ReadOnlySpan<int> tokens, int vocab)
    {
        foreach (var token in tokens)
        {
            if ((uint)token >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(tokens), $"token id {token} is outside the vocabulary [0, {vocab})");
        }
    }
}
