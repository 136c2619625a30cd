using Exo.Inference.Kernels;

namespace Exo.Inference.Model;

/// <summary>
/// One pipeline stage of a Llama-family transformer on the CPU: layers [Start, End), plus the embeddings when it is the
/// first stage and the final norm and lm head when it is the last. The whole model is the stage [0, L).
/// </summary>
public sealed class ModelStage : IModelStage
{
    private readonly StageWeights _weights;
    private readonly IKernels _kernels;
    private readonly RotaryEmbedding _rope;
    private Workspace? _work;

    public ModelStage(ModelConfig config, StageWeights weights, IKernels kernels)
    {
        Config = config;
        _weights = weights;
        _kernels = kernels;
        _rope = new RotaryEmbedding(config.Rope, config.HeadDim);
    }

    public ModelConfig Config { get; }
    public LayerRange Layers => _weights.Layers;
    public StageWeights Weights => _weights;
    public string Backend => "cpu " + (_kernels is FastKernels fast ? fast.Name : "reference");
    public long BytesPerToken => _weights.BytesPerToken;

    // The CPU kernels compute each output from its own input row in a fixed order.
    public bool BatchInvariant => true;

    /// <summary>
    /// Loads layers <paramref name="layers"/> (all when null) of a model folder or GGUF file with the given kernels,
    /// optionally quantizing the weight matrices at load; the fast kernels when none are given (verification passes the
    /// reference kernels explicitly).
    /// </summary>
    public static ModelStage Load(string modelPath, LayerRange? layers = null, IKernels? kernels = null, Weights.DType? quantize = null)
    {
        var config = ModelConfig.LoadAny(modelPath);
        var range = layers ?? LayerRange.All(config.LayerCount);
        var k = kernels ?? FastKernels.Default;
        return new ModelStage(config, StageWeights.Load(modelPath, config, range, quantize, k), k);
    }

    public KvCache CreateCache(int capacity) => new HostKvCache(Layers.Count, Config.KvDim, capacity);

    public int ForwardTokens(ReadOnlySpan<SequenceChunk> batch, ReadOnlySpan<int> tokens, Span<float> output,
        LogitRows logitRows = LogitRows.LastOfEachSequence, HiddenStateObserver? observe = null)
    {
        if (!this.IsFirst) throw new InvalidOperationException($"stage {Layers} does not hold the embeddings; send it hidden states");
        var rows = Prepare(batch, tokens.Length);
        StageShape.CheckTokens(tokens, Config.VocabSize);

        _kernels.Embed(_weights.EmbedTokens!.Value, tokens, _work!.X.AsSpan(0, rows * Config.HiddenSize));
        return Run(batch, rows, output, logitRows, observe);
    }

    public int ForwardHidden(ReadOnlySpan<SequenceChunk> batch, ReadOnlySpan<float> hidden, Span<float> output,
        LogitRows logitRows = LogitRows.LastOfEachSequence, HiddenStateObserver? observe = null)
    {
        var width = Config.HiddenSize;
        if (hidden.Length % width != 0) throw new ArgumentException($"hidden states of {hidden.Length} values are not rows of {width}", nameof(hidden));
        var rows = Prepare(batch, hidden.Length / width);
        hidden.CopyTo(_work!.X);
        return Run(batch, rows, output, logitRows, observe);
    }

    private int Prepare(ReadOnlySpan<SequenceChunk> batch, int rows)
    {
        var (_, longest) = StageShape.Check(batch, rows);
        foreach (var chunk in batch)
        {
            if (chunk.Cache is not HostKvCache) throw new ArgumentException("a KV cache made by another backend's stage cannot run on the CPU", nameof(batch));
        }

        // Sized by cache capacity, not current length, so decoding step by step never reallocates.
        if (_work is null || rows > _work.Rows || longest > _work.Context)
            _work = new Workspace(Math.Max(rows, _work?.Rows ?? 0), Math.Max(longest, _work?.Context ?? 0), Config);
        return rows;
    }

    private int Run(ReadOnlySpan<SequenceChunk> batch, int rows, Span<float> output, LogitRows logitRows, HiddenStateObserver? observe)
    {
        var c = Config;
        var k = _kernels;
        var w = _work!;
        var eps = (float)c.RmsNormEps;
        var outRows = this.OutputRows(batch, logitRows);
        if (output.Length < outRows * this.OutputWidth) throw new ArgumentException($"output holds {output.Length} values; {outRows} x {this.OutputWidth} needed", nameof(output));

        var x = w.X.AsSpan(0, rows * c.HiddenSize);                 // [rows, hidden] residual stream
        var xn = w.Normed.AsSpan(0, rows * c.HiddenSize);           // [rows, hidden]
        var q = w.Q.AsSpan(0, rows * c.QueryDim);                   // [rows, heads * headDim]
        var kNew = w.K.AsSpan(0, rows * c.KvDim);                   // [rows, kvHeads * headDim]
        var vNew = w.V.AsSpan(0, rows * c.KvDim);                   // [rows, kvHeads * headDim]
        var attention = w.Attention.AsSpan(0, rows * c.QueryDim);   // [rows, heads * headDim]
        var projected = w.Projected.AsSpan(0, rows * c.HiddenSize); // [rows, hidden]
        var gate = w.Gate.AsSpan(0, rows * c.IntermediateSize);     // [rows, ffn]
        var up = w.Up.AsSpan(0, rows * c.IntermediateSize);         // [rows, ffn]
        var cos = w.Cos.AsSpan(0, rows * _rope.Half);               // [rows, headDim / 2]
        var sin = w.Sin.AsSpan(0, rows * _rope.Half);               // [rows, headDim / 2]

        var positions = w.Positions.AsSpan(0, rows);                // [rows]
        var row = 0;
        foreach (var chunk in batch)
        {
            for (var i = 0; i < chunk.Count; i++) positions[row++] = chunk.Cache.Length + i;
        }

        _rope.Compute(positions, cos, sin);

        for (var l = 0; l < Layers.Count; l++)
        {
            var layer = Layers.Start + l;
            var lw = _weights.LayerWeights[l];
            observe?.Invoke(layer, x);

            // Attention block: x += o_proj(attention(rope(q), rope(k), v)).
            k.RmsNorm(x, rows, lw.InputNorm, eps, xn);
            k.MatMul(xn, rows, lw.QProj, lw.QBias, q);
            k.MatMul(xn, rows, lw.KProj, lw.KBias, kNew);
            k.MatMul(xn, rows, lw.VProj, lw.VBias, vNew);
            if (c.QkNorm)
            {
                k.RmsNorm(q, rows * c.HeadCount, lw.QNorm, eps, q);
                k.RmsNorm(kNew, rows * c.KvHeadCount, lw.KNorm, eps, kNew);
            }

            k.Rope(q, rows, c.HeadCount, c.HeadDim, cos, sin);
            k.Rope(kNew, rows, c.KvHeadCount, c.HeadDim, cos, sin);

            row = 0;
            foreach (var chunk in batch)
            {
                var first = chunk.Cache.Length;
                var end = first + chunk.Count;
                var cache = (HostKvCache)chunk.Cache;
                var keys = cache.Keys(l, end);
                var values = cache.Values(l, end);
                kNew.Slice(row * c.KvDim, chunk.Count * c.KvDim).CopyTo(keys[(first * c.KvDim)..]);
                vNew.Slice(row * c.KvDim, chunk.Count * c.KvDim).CopyTo(values[(first * c.KvDim)..]);
                k.Attention(q.Slice(row * c.QueryDim, chunk.Count * c.QueryDim), chunk.Count, first, keys, values,
                    c.HeadCount, c.KvHeadCount, c.HeadDim, c.SlidingWindows[layer], w.Scores,
                    attention.Slice(row * c.QueryDim, chunk.Count * c.QueryDim));
                row += chunk.Count;
            }

            k.MatMul(attention, rows, lw.OProj, lw.OBias, projected);
            k.Add(x, projected);

            // Feed-forward block: x += down(silu(gate(x)) * up(x)).
            k.RmsNorm(x, rows, lw.PostAttentionNorm, eps, xn);
            k.MatMul(xn, rows, lw.GateProj, lw.GateBias, gate);
            k.MatMul(xn, rows, lw.UpProj, lw.UpBias, up);
            k.SiluMul(gate, up);
            k.MatMul(gate, rows, lw.DownProj, lw.DownBias, projected);
            k.Add(x, projected);
        }

        foreach (var chunk in batch) chunk.Cache.Advance(chunk.Count);

        if (!this.IsLast)
        {
            x.CopyTo(output);
            return rows;
        }

        // Last stage: final norm, then the lm head over the rows that need logits.
        k.RmsNorm(x, rows, _weights.FinalNorm!, eps, xn);
        observe?.Invoke(c.LayerCount, xn);
        if (outRows != rows)
        {
            row = 0;
            var selected = 0;
            foreach (var chunk in batch)
            {
                row += chunk.Count;
                xn.Slice((row - 1) * c.HiddenSize, c.HiddenSize).CopyTo(xn[(selected++ * c.HiddenSize)..]);
            }
        }

        k.MatMul(xn, outRows, _weights.LmHead!.Value, [], output);
        return outRows;
    }

    public void Dispose() => _weights.Dispose();

    /// <summary>Activation buffers sized for the largest batch seen, so steady-state decoding allocates nothing.</summary>
    private sealed class Workspace
    {
        public Workspace(int rows, int context, ModelConfig c)
        {
            Rows = rows;
            Context = context;
            X = new float[rows * c.HiddenSize];
            Normed = new float[rows * c.HiddenSize];
            Q = new float[rows * c.QueryDim];
            K = new float[rows * c.KvDim];
            V = new float[rows * c.KvDim];
            Attention = new float[rows * c.QueryDim];
            Projected = new float[rows * c.HiddenSize];
            Gate = new float[rows * c.IntermediateSize];
            Up = new float[rows * c.IntermediateSize];
            Cos = new float[rows * (c.HeadDim / 2)];
            Sin = new float[rows * (c.HeadDim / 2)];
            Positions = new int[rows];
            Scores = new float[context];
        }

        public int Rows { get; }
        public int Context { get; }
        public float[] X { get; }
        public float[] Normed { get; }
        public float[] Q { get; }
        public float[] K { get; }
        public float[] V { get; }
        public float[] Attention { get; }
        public float[] Projected { get; }
        public float[] Gate { get; }
        public float[] Up { get; }
        public float[] Cos { get; }
        public float[] Sin { get; }
        public int[] Positions { get; }
        public float[] Scores { get; }
    }
}
