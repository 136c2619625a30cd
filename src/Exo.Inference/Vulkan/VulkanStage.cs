using Exo.Inference.Model;
using Exo.Inference.Weights;

namespace Exo.Inference.Vulkan;

/// <summary>
/// One pipeline stage on a Vulkan GPU: the same forward pass as <see cref="ModelStage"/>, recorded as kernel launches
/// into one command buffer per step. Weights, KV caches and activations stay on the GPU; only the step's inputs (token
/// ids or hidden states, and the rope angles) go up, and only its outputs (hidden states or logits) come back.
/// </summary>
public sealed class VulkanStage : IModelStage
{
    /// <summary>Query rows of one sequence that attend at once: attention's scratch is this many rows' worth.</summary>
    private const int AttentionRows = 256;

    private readonly GpuContext _context;
    private readonly VulkanWeights _weights;
    private readonly CommandStream _stream;
    private readonly VulkanKernels _k;
    private readonly RotaryEmbedding _rope;
    private readonly Lock _gate = new();
    private readonly List<GpuBuffer> _released = [];
    private bool _running;
    private Workspace? _work;

    private VulkanStage(GpuContext context, ModelConfig config, LayerRange layers, StageWeights weights)
    {
        _context = context;
        Config = config;
        Layers = layers;
        BytesPerToken = weights.BytesPerToken;
        _rope = new RotaryEmbedding(config.Rope, config.HeadDim);
        _stream = new CommandStream(context.Device, context.Pipelines);
        _k = new VulkanKernels(_stream);
        try
        {
            _weights = new VulkanWeights(context.Device, _stream, weights);
        }
        catch
        {
            _stream.Dispose();
            throw;
        }
    }

    /// <summary>Loads layers <paramref name="layers"/> (all when null) of a model folder or GGUF file onto the context's GPU.</summary>
    public static VulkanStage Load(GpuContext context, string modelPath, LayerRange? layers = null, DType? quantize = null)
    {
        var config = ModelConfig.LoadAny(modelPath);
        if (config.HeadDim > 256 || config.HeadDim % 2 != 0)
            throw new ModelFormatException($"head_dim {config.HeadDim}: the GPU attention kernel takes even head sizes up to 256; run with --backend cpu");
        var range = layers ?? LayerRange.All(config.LayerCount);
        // The host copy is only read during the upload: it is released (unmapped) as soon as the GPU holds the weights.
        using var host = StageWeights.Load(modelPath, config, range, quantize, VulkanWeights.Preferences);
        return new VulkanStage(context, config, range, host);
    }

    public ModelConfig Config { get; }
    public LayerRange Layers { get; }
    public string Backend => $"vulkan {_context.Device.Info.Name}";

    /// <summary>The GPU this stage runs on.</summary>
    public GpuContext Context => _context;
    public long BytesPerToken { get; }

    // Decode batches (below VulkanKernels.TiledRows rows) give each row the same bits whatever else is in the batch,
    // but a long prefill runs the tiled kernel, whose sums are ordered otherwise: equal to rounding, not to the bit.
    public bool BatchInvariant => false;

    public KvCache CreateCache(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        var bytes = 2L * Layers.Count * capacity * Config.KvDim * sizeof(float);
        return new GpuKvCache(this, _context.Device.Allocate(bytes, hostVisible: false), capacity, Config.KvDim);
    }

    public int ForwardTokens(ReadOnlySpan<SequenceChunk> batch, ReadOnlySpan<int> tokens, Span<float> output,
        LogitRows logitRows = LogitRows.LastOfEachSequence, HiddenStateObserver? observe = null)
    {
        if (!this.IsFirst) throw new InvalidOperationException($"stage {Layers} does not hold the embeddings; send it hidden states");
        StageShape.CheckTokens(tokens, Config.VocabSize);
        return Step(batch, tokens, [], tokens.Length, output, logitRows, observe);
    }

    public int ForwardHidden(ReadOnlySpan<SequenceChunk> batch, ReadOnlySpan<float> hidden, Span<float> output,
        LogitRows logitRows = LogitRows.LastOfEachSequence, HiddenStateObserver? observe = null)
    {
        var width = Config.HiddenSize;
        if (hidden.Length % width != 0) throw new ArgumentException($"hidden states of {hidden.Length} values are not rows of {width}", nameof(hidden));
        return Step(batch, [], hidden, hidden.Length / width, output, logitRows, observe);
    }

    /// <summary>One step of either input (the other empty): marks it running, puts the input up, runs, and ends it however it ends.</summary>
    private int Step(ReadOnlySpan<SequenceChunk> batch, ReadOnlySpan<int> tokens, ReadOnlySpan<float> hidden, int rows, Span<float> output,
        LogitRows logitRows, HiddenStateObserver? observe)
    {
        Enter(batch);
        try
        {
            var w = Prepare(batch, rows);
            tokens.CopyTo(w.In.Host<int>(w.TokensAt, tokens.Length));
            hidden.CopyTo(w.In.Host<float>(w.HiddenAt, hidden.Length));
            return Run(batch, rows, output, logitRows, observe);
        }
        catch
        {
            _stream.Abandon();
            throw;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Marks a step as running before anything looks at its caches: from here on, a cache disposed on another thread
    /// (a request closed mid-step) keeps its memory until <see cref="Exit"/>. A cache disposed already is refused.
    /// </summary>
    private void Enter(ReadOnlySpan<SequenceChunk> batch)
    {
        lock (_gate)
        {
            foreach (var chunk in batch)
            {
                if (chunk.Cache is GpuKvCache { IsDisposed: true }) throw new ObjectDisposedException(nameof(KvCache), "a KV cache in the batch was freed (its request closed)");
            }

            _running = true;
        }
    }

    /// <summary>Ends a step, however it ended: frees the caches disposed while it ran.</summary>
    private void Exit()
    {
        lock (_gate)
        {
            _running = false;
            foreach (var b in _released) b.Dispose();
            _released.Clear();
        }
    }

    private Workspace Prepare(ReadOnlySpan<SequenceChunk> batch, int rows)
    {
        StageShape.Check(batch, rows);
        foreach (var chunk in batch)
        {
            if (chunk.Cache is not GpuKvCache cache || cache.Owner != this)
                throw new ArgumentException("a KV cache made by another stage cannot run on this GPU stage", nameof(batch));
        }

        if (_work is null || rows > _work.Rows)
        {
            _work?.Dispose();
            _work = null;
            _work = new Workspace(_context.Device, Math.Max(rows, 1), Config, _rope.Half);
        }

        return _work;
    }

    private int Run(ReadOnlySpan<SequenceChunk> batch, int rows, Span<float> output, LogitRows logitRows, HiddenStateObserver? observe)
    {
        var c = Config;
        var w = _work!;
        var k = _k;
        var s = _stream;
        var eps = (float)c.RmsNormEps;
        var outRows = this.OutputRows(batch, logitRows);
        var outWidth = this.OutputWidth;
        if (output.Length < outRows * outWidth) throw new ArgumentException($"output holds {output.Length} values; {outRows} x {outWidth} needed", nameof(output));
        w.EnsureOutput(_context.Device, Math.Max((long)outRows * outWidth, (long)rows * c.HiddenSize));
        long scratch = 0;
        foreach (var chunk in batch) scratch += AttentionScratch(chunk);
        w.EnsureScratch(_context.Device, scratch);

        // Rope angles for each row's absolute position, computed on the host as the CPU engine computes them.
        Span<int> positions = rows <= 1024 ? stackalloc int[rows] : new int[rows];
        var row = 0;
        foreach (var chunk in batch)
        {
            for (var i = 0; i < chunk.Count; i++) positions[row++] = chunk.Cache.Length + i;
        }

        _rope.Compute(positions, w.In.Host<float>(w.CosAt, rows * _rope.Half), w.In.Host<float>(w.SinAt, rows * _rope.Half));

        var x = w.X.Address;                 // [rows, hidden] residual stream
        var xn = w.Normed.Address;           // [rows, hidden]
        var q = w.Q.Address;                 // [rows, heads * headDim]
        var kNew = w.K.Address;              // [rows, kvHeads * headDim]
        var vNew = w.V.Address;              // [rows, kvHeads * headDim]
        var attention = w.Attention.Address; // [rows, heads * headDim]
        var projected = w.Projected.Address; // [rows, hidden]
        var gate = w.Gate.Address;           // [rows, ffn]
        var up = w.Up.Address;               // [rows, ffn]
        var cos = w.In.Address + (ulong)w.CosAt; // [rows, headDim / 2]
        var sin = w.In.Address + (ulong)w.SinAt; // [rows, headDim / 2]
        var kvRowBytes = (long)c.KvDim * sizeof(float);

        if (this.IsFirst) k.Embed(w.In.Address + (ulong)w.TokensAt, rows, _weights.EmbedTokens!, x);
        else s.Copy(w.In, w.HiddenAt, w.X, 0, (long)rows * c.HiddenSize * sizeof(float));
        s.Barrier();

        for (var l = 0; l < Layers.Count; l++)
        {
            var lw = _weights.Layers[l];
            if (observe is not null) Observe(observe, Layers.Start + l, w.X, rows);

            // Attention block: x += o_proj(attention(rope(q), rope(k), v)).
            // One sequence's new keys and values go straight into its cache (values from their projection, keys from
            // rope); a batch's go through the workspace, then a copy into each sequence's cache.
            var single = batch.Length == 1 ? (GpuKvCache)batch[0].Cache : null;
            var kvAt = single is null ? 0 : single.Length * kvRowBytes;
            var vOut = single is null ? vNew : single.Buffer.Address + (ulong)(single.ValuesOffset(l) + kvAt);
            var kOut = single is null ? kNew : single.Buffer.Address + (ulong)(single.KeysOffset(l) + kvAt);

            k.RmsNorm(x, rows, c.HiddenSize, lw.InputNorm, eps, xn);
            s.Barrier();
            k.MatMul(xn, rows, lw.QProj, lw.QBias, q);
            k.MatMul(xn, rows, lw.KProj, lw.KBias, kNew);
            k.MatMul(xn, rows, lw.VProj, lw.VBias, vOut);
            s.Barrier();
            if (c.QkNorm)
            {
                k.RmsNorm(q, rows * c.HeadCount, c.HeadDim, lw.QNorm, eps, q);
                k.RmsNorm(kNew, rows * c.KvHeadCount, c.HeadDim, lw.KNorm, eps, kNew);
                s.Barrier();
            }

            k.Rope(q, rows, c.HeadCount, c.HeadDim, cos, sin, q);
            k.Rope(kNew, rows, c.KvHeadCount, c.HeadDim, cos, sin, kOut);
            s.Barrier();

            if (single is null)
            {
                row = 0;
                foreach (var chunk in batch)
                {
                    var cache = (GpuKvCache)chunk.Cache;
                    s.Copy(w.K, row * kvRowBytes, cache.Buffer, cache.KeysOffset(l) + chunk.Cache.Length * kvRowBytes, chunk.Count * kvRowBytes);
                    s.Copy(w.V, row * kvRowBytes, cache.Buffer, cache.ValuesOffset(l) + chunk.Cache.Length * kvRowBytes, chunk.Count * kvRowBytes);
                    row += chunk.Count;
                }

                s.Barrier();
            }

            Attend(batch, l, q, attention);
            s.Barrier();
            k.MatMul(attention, rows, lw.OProj, lw.OBias, x, accumulate: true);
            s.Barrier();

            // Feed-forward block: x += down(silu(gate(x)) * up(x)).
            k.RmsNorm(x, rows, c.HiddenSize, lw.PostAttentionNorm, eps, xn);
            s.Barrier();
            k.GatedUp(xn, rows, lw.GateProj, lw.GateBias, lw.UpProj, lw.UpBias, gate, up);
            s.Barrier();
            k.MatMul(gate, rows, lw.DownProj, lw.DownBias, x, accumulate: true);
            s.Barrier();
        }

        if (!this.IsLast)
        {
            s.Copy(w.X, 0, w.Out, 0, (long)rows * c.HiddenSize * sizeof(float));
        }
        else
        {
            // Last stage: final norm, then the lm head over the rows that need logits.
            k.RmsNorm(x, rows, c.HiddenSize, _weights.FinalNorm, eps, xn);
            s.Barrier();
            if (observe is not null) Observe(observe, c.LayerCount, w.Normed, rows);

            var head = xn;
            if (outRows != rows)
            {
                row = 0;
                var selected = 0;
                var rowBytes = (long)c.HiddenSize * sizeof(float);
                foreach (var chunk in batch)
                {
                    row += chunk.Count;
                    s.Copy(w.Normed, (row - 1) * rowBytes, w.Projected, selected++ * rowBytes, rowBytes);
                }

                s.Barrier();
                head = projected;
            }

            k.MatMul(head, outRows, _weights.LmHead!, 0, w.Logits!.Address);
            s.Barrier();
            s.Copy(w.Logits, 0, w.Out, 0, (long)outRows * outWidth * sizeof(float));
        }

        s.Barrier();
        s.Run();
        w.Out.Host<float>(0, outRows * outWidth).CopyTo(output);
        foreach (var chunk in batch) chunk.Cache.Advance(chunk.Count);
        return outRows;
    }

    /// <summary>
    /// Each sequence's new rows attend over its cache in rounds of at most <see cref="AttentionRows"/> rows a sequence:
    /// a round scores the spans of every sequence's slice, then merges them, each sequence in its own part of the
    /// scratch, which the next round reuses. So scratch grows with the length of the context, not with its square.
    /// </summary>
    private void Attend(ReadOnlySpan<SequenceChunk> batch, int layer, ulong q, ulong output)
    {
        var c = Config;
        var rowBytes = (ulong)c.QueryDim * sizeof(float);
        var window = c.SlidingWindows[Layers.Start + layer];
        var rounds = 0;
        foreach (var chunk in batch) rounds = Math.Max(rounds, (chunk.Count + AttentionRows - 1) / AttentionRows);
        for (var round = 0; round < rounds; round++)
        {
            // Spans, then (after a barrier) merges; a later round's spans overwrite what the earlier merges read.
            for (var merge = 0; merge < 2; merge++)
            {
                if (round > 0 || merge > 0) _stream.Barrier();
                var scratch = _work!.Scratch!.Address;
                ulong row = 0;
                foreach (var chunk in batch)
                {
                    var start = round * AttentionRows;
                    if (start < chunk.Count)
                    {
                        var count = Math.Min(AttentionRows, chunk.Count - start);
                        var first = chunk.Cache.Length + start;
                        var at = (row + (ulong)start) * rowBytes;
                        if (merge == 0)
                        {
                            var cache = (GpuKvCache)chunk.Cache;
                            _k.AttentionSpans(q + at, count, first, cache.Buffer.Address + (ulong)cache.KeysOffset(layer), cache.Buffer.Address + (ulong)cache.ValuesOffset(layer),
                                c.HeadCount, c.KvHeadCount, c.HeadDim, window, scratch);
                        }
                        else
                        {
                            _k.AttentionMerge(scratch, count, first, c.HeadCount, c.HeadDim, output + at);
                        }
                    }

                    scratch += (ulong)AttentionScratch(chunk) * sizeof(float);
                    row += (ulong)chunk.Count;
                }
            }
        }
    }

    /// <summary>Floats of attention scratch a sequence's largest slice of rows needs.</summary>
    private long AttentionScratch(SequenceChunk chunk)
    {
        long most = 0;
        for (var start = 0; start < chunk.Count; start += AttentionRows)
        {
            var count = Math.Min(AttentionRows, chunk.Count - start);
            most = Math.Max(most, VulkanKernels.AttentionScratch(count, chunk.Cache.Length + start + count, Config.HeadCount, Config.HeadDim));
        }

        return most;
    }

    /// <summary>Runs what is recorded so far and shows hidden states [rows, hidden] at a layer boundary (verification only).</summary>
    private void Observe(HiddenStateObserver observe, int boundary, GpuBuffer hidden, int rows)
    {
        var w = _work!;
        _stream.Copy(hidden, 0, w.Out, 0, (long)rows * Config.HiddenSize * sizeof(float));
        _stream.Barrier();
        _stream.Run();
        observe(boundary, w.Out.Host<float>(0, rows * Config.HiddenSize));
    }

    /// <summary>Frees a cache's memory now, or after the step in flight if one is (it may be reading it).</summary>
    internal void Release(GpuBuffer buffer)
    {
        lock (_gate)
        {
            if (_running) _released.Add(buffer);
            else buffer.Dispose();
        }
    }

    public void Dispose()
    {
        _work?.Dispose();
        _weights.Dispose();
        _stream.Dispose();
    }

    /// <summary>Activation buffers on the GPU sized for the largest batch seen, and the host-visible step input and output.</summary>
    private sealed class Workspace : IDisposable
    {
        public Workspace(VulkanDevice device, int rows, ModelConfig c, int ropeHalf)
        {
            Rows = rows;
            TokensAt = 0;
            CosAt = Align((long)rows * sizeof(int));
            SinAt = CosAt + Align((long)rows * ropeHalf * sizeof(float));
            HiddenAt = SinAt + Align((long)rows * ropeHalf * sizeof(float));
            GpuBuffer Floats(long count) => device.Allocate(count * sizeof(float), hostVisible: false);
            try
            {
                X = Floats((long)rows * c.HiddenSize);
                Normed = Floats((long)rows * c.HiddenSize);
                Q = Floats((long)rows * c.QueryDim);
                K = Floats((long)rows * c.KvDim);
                V = Floats((long)rows * c.KvDim);
                Attention = Floats((long)rows * c.QueryDim);
                Projected = Floats((long)rows * c.HiddenSize);
                Gate = Floats((long)rows * c.IntermediateSize);
                Up = Floats((long)rows * c.IntermediateSize);
                In = device.Allocate(HiddenAt + (long)rows * c.HiddenSize * sizeof(float), hostVisible: true);
                Out = device.Allocate((long)rows * c.HiddenSize * sizeof(float), hostVisible: true);
            }
            catch
            {
                // Out of memory partway: the buffers already made are freed (those not made are still null).
                Dispose();
                throw;
            }
        }

        private static long Align(long bytes) => (bytes + 255) & ~255L;

        public int Rows { get; }
        public GpuBuffer X { get; }
        public GpuBuffer Normed { get; }
        public GpuBuffer Q { get; }
        public GpuBuffer K { get; }
        public GpuBuffer V { get; }
        public GpuBuffer Attention { get; }
        public GpuBuffer Projected { get; }
        public GpuBuffer Gate { get; }
        public GpuBuffer Up { get; }
        public GpuBuffer In { get; }             // host-visible: token ids, cos, sin, hidden states in
        public long TokensAt { get; }            // [rows] int
        public long CosAt { get; }               // [rows, headDim / 2]
        public long SinAt { get; }               // [rows, headDim / 2]
        public long HiddenAt { get; }            // [rows, hidden]
        public GpuBuffer Out { get; private set; }        // host-visible: hidden states or logits out
        public GpuBuffer? Logits { get; private set; }    // [outRows, vocab] on the device
        public GpuBuffer? Scratch { get; private set; }   // attention's partial results: per sequence, [slice rows * heads, spans, headDim + 2]

        /// <summary>Grows the attention scratch to <paramref name="values"/> floats.</summary>
        public void EnsureScratch(VulkanDevice device, long values)
        {
            if (Scratch is not null && Scratch.Size >= values * sizeof(float)) return;
            // Null while allocating: a failed allocation must not leave the freed buffer in place for the next step.
            Scratch?.Dispose();
            Scratch = null;
            Scratch = device.Allocate(values * sizeof(float), hostVisible: false);
        }

        /// <summary>Grows the output buffers to <paramref name="values"/> floats.</summary>
        public void EnsureOutput(VulkanDevice device, long values)
        {
            var bytes = values * sizeof(float);
            if (Out.Size < bytes)
            {
                // The new buffer first: a failed allocation leaves the old one in place, not freed.
                var grown = device.Allocate(bytes, hostVisible: true);
                Out.Dispose();
                Out = grown;
            }

            if (Logits is null || Logits.Size < bytes)
            {
                Logits?.Dispose();
                Logits = null;
                Logits = device.Allocate(bytes, hostVisible: false);
            }
        }

        public void Dispose()
        {
            foreach (var b in new[] { X, Normed, Q, K, V, Attention, Projected, Gate, Up, In, Out, Logits, Scratch }) b?.Dispose();
        }
    }
}

/// <summary>A sequence's keys and values on the GPU: per layer, [capacity, kvDim] keys then [capacity, kvDim] values.</summary>
internal sealed class GpuKvCache(VulkanStage owner, GpuBuffer buffer, int capacity, int kvDim) : KvCache(capacity)
{
    private int _disposed;

    public VulkanStage Owner { get; } = owner;
    public GpuBuffer Buffer { get; } = buffer;

    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    public long KeysOffset(int layer) => 2L * layer * Capacity * kvDim * sizeof(float);

    public long ValuesOffset(int layer) => (2L * layer + 1) * Capacity * kvDim * sizeof(float);

    public override void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) Owner.Release(Buffer);
        base.Dispose();
    }
}
