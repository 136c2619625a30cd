using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Exo.Inference.Weights;

namespace Exo.Inference.Kernels;

/// <summary>
/// The fast kernels for one vector width. Every output element is accumulated in the same order whatever the batch
/// size, the thread count or the path (decode or blocked prefill), so one-token steps reproduce a prefill bit for bit.
/// This file holds the entry points and what they share; the matrix products are in SimdMatMul.cs, attention in
/// SimdAttention.cs.
/// </summary>
internal sealed unsafe partial class SimdKernels<S, V> : IKernels where S : ISimd<V> where V : struct
{
    // Activation rows up to which a matmul streams each weight row once for all of them (decode and small batches).
    private const int DecodeRows = 4;

    // Bytes of f32 weights converted per prefill tile: they stay in L2 while every activation row passes over them.
    private const int TileBytes = 96 * 1024;

    // Multiply-adds below which a loop runs on the calling thread: waking a worker would cost more than it saves.
    private const long ParallelMinimum = 1 << 16;

    private readonly WorkerPool _pool;
    private readonly Lock _gate = new();
    private readonly MatMulJob _matMul;
    private readonly AttentionJob _attention;
    private readonly Scratch _scratch;

    public SimdKernels(WorkerPool pool, QuantDot.Path quantPath)
    {
        _pool = pool;
        _scratch = new Scratch(pool.Threads, quantPath);
        _matMul = new MatMulJob(_scratch);
        _attention = new AttentionJob(_scratch);
    }

    /// <summary>
    /// Where integer dot-product kernels run (x86 or Arm), block types without one of their own (Q4_1, Q5_K, Q6_K) become Q8_0: its steps
    /// are finer than theirs, so re-quantizing adds little error, and it runs several times faster than the per-tile
    /// dequantization they would otherwise take (at 8.5 bits a weight instead of 5 to 6.6).
    /// </summary>
    public DType PreferredType(DType type) =>
        type is DType.Q4_1 or DType.Q5_K or DType.Q6_K && _scratch.Path != QuantDot.Path.Portable ? DType.Q8_0 : type;

    /// <summary>Q8_0, Q4_0 and Q4_K interleaved where integer dot-product kernels run; everything else as stored.</summary>
    public TensorLayout PreferredLayout(DType type) =>
        type is DType.Q8_0 or DType.Q4_0 or DType.Q4_K && _scratch.Path != QuantDot.Path.Portable ? TensorLayout.Interleaved : TensorLayout.Rows;

    public void MatMul(ReadOnlySpan<float> x, int n, in Tensor w, ReadOnlySpan<float> bias, Span<float> y)
    {
        int rows = w.Rows, columns = w.Columns;
        if (n < 0 || x.Length < (long)n * columns || y.Length < (long)n * rows) throw new ArgumentException("matmul buffers are too small");
        if (!bias.IsEmpty && bias.Length != rows) throw new ArgumentException($"bias has {bias.Length} values; the weight has {rows} rows");
        if (n == 0) return;

        fixed (float* xp = x)
        fixed (float* yp = y)
        fixed (float* bp = bias)
        lock (_gate)
        {
            var job = _matMul;
            sbyte* xq = null;
            float* xs = null, xsum = null;
            int* offsets = null;
            var interleaved = w.Layout == TensorLayout.Interleaved;
            // Interleaved weights need the integer dot-product kernels; the portable path converts them like any other type.
            var quantized = (w.Type is DType.Q8_0 or DType.Q4_0 || (interleaved && w.Type == DType.Q4_K)) && (!interleaved || _scratch.Path != QuantDot.Path.Portable);
            if (quantized)
            {
                if (columns % QuantDot.BlockSize != 0) throw new ArgumentException($"{w.Type} rows of {columns} values are not whole blocks");
                xq = _scratch.Activations(n * columns);
                xs = _scratch.ActivationScales;
                xsum = _scratch.ActivationSums;
                offsets = _scratch.ActivationOffsets;
                QuantDot.QuantizeRows(xp, n, columns, xq, xs, xsum, offsets);
            }

            job.Set(xp, n, w, bp, yp, xq, xs, xsum, offsets);
            if (quantized && interleaved)
            {
                // Items are groups of rows; a group stays in cache while every activation row passes over it.
                job.Tile = -1;
                For(rows / InterleavedRows.GroupRows, (long)n * rows * columns, job);
                return;
            }

            var streamed = n <= DecodeRows && !interleaved && (quantized || w.Type is DType.F32 or DType.F16 or DType.BF16);
            // Tiles hold about TileBytes of the weight as stored (quantized) or as converted f32 rows.
            var tileRowBytes = quantized ? w.RowByteCount : columns * sizeof(float);
            job.Tile = streamed ? 0 : (int)Math.Clamp(TileBytes / tileRowBytes, 1, rows);
            var items = streamed ? rows : (rows + job.Tile - 1) / job.Tile;
            For(items, (long)n * rows * columns, job);
        }
    }

    private void For(int items, long work, IParallelWork job)
    {
        if (work < ParallelMinimum) job.Run(0, 0, items);
        else _pool.For(items, job);
    }

    public void Embed(in Tensor table, ReadOnlySpan<int> tokens, Span<float> y)
    {
        var columns = table.Columns;
        if (y.Length < (long)tokens.Length * columns) throw new ArgumentException("embedding output is too small");
        fixed (float* yp = y)
        {
            for (var t = 0; t < tokens.Length; t++)
            {
                if ((uint)tokens[t] >= (uint)table.Rows) throw new ArgumentOutOfRangeException(nameof(tokens), $"token {tokens[t]} is outside the table");
                ReadRow(table, tokens[t], yp + (long)t * columns);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void RmsNorm(ReadOnlySpan<float> x, int n, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        var d = weight.Length;
        if (x.Length < (long)n * d || y.Length < (long)n * d) throw new ArgumentException("norm buffers are too small");
        fixed (float* xp = x)
        fixed (float* wp = weight)
        fixed (float* yp = y)
        {
            for (var t = 0; t < n; t++)
            {
                float* xt = xp + (long)t * d, yt = yp + (long)t * d;
                var scale = 1f / MathF.Sqrt(Dot(xt, xt, d) / d + eps);
                var vs = S.Broadcast(scale);
                nint i = 0;
                for (; i + S.Count <= d; i += S.Count) S.Store(S.Multiply(S.Load(wp + i), S.Multiply(S.Load(xt + i), vs)), yt + i);
                for (; i < d; i++) yt[i] = wp[i] * (xt[i] * scale);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Rope(Span<float> x, int n, int heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        var half = headDim / 2;
        if (x.Length < (long)n * heads * headDim || cos.Length < (long)n * half || sin.Length < (long)n * half) throw new ArgumentException("rope buffers are too small");
        fixed (float* xp = x)
        fixed (float* cp = cos)
        fixed (float* sp = sin)
        {
            for (var t = 0; t < n; t++)
            {
                float* c = cp + (long)t * half, s = sp + (long)t * half;
                for (var h = 0; h < heads; h++)
                {
                    var v = xp + ((long)t * heads + h) * headDim;
                    nint i = 0;
                    for (; i + S.Count <= half; i += S.Count)
                    {
                        V a = S.Load(v + i), b = S.Load(v + i + half), vc = S.Load(c + i), vs = S.Load(s + i);
                        S.Store(S.Subtract(S.Multiply(a, vc), S.Multiply(b, vs)), v + i);
                        S.Store(S.MultiplyAdd(b, vc, S.Multiply(a, vs)), v + i + half);
                    }

                    for (; i < half; i++)
                    {
                        float a = v[i], b = v[i + half];
                        v[i] = a * c[i] - b * s[i];
                        v[i + half] = MathF.FusedMultiplyAdd(b, c[i], a * s[i]);
                    }
                }
            }
        }
    }

    public void Attention(ReadOnlySpan<float> q, int count, int first, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        int heads, int kvHeads, int headDim, int window, Span<float> scores, Span<float> output)
    {
        var kvDim = (long)kvHeads * headDim;
        var positions = first + count;
        if (kvHeads <= 0 || heads % kvHeads != 0) throw new ArgumentException($"{heads} heads cannot share {kvHeads} key/value heads");
        if (q.Length < (long)count * heads * headDim || output.Length < (long)count * heads * headDim
            || keys.Length < positions * kvDim || values.Length < positions * kvDim) throw new ArgumentException("attention buffers are too small");

        // Each worker scores its (query, head) pairs in its own scratch, so the caller's single scores buffer is not used.
        fixed (float* qp = q)
        fixed (float* kp = keys)
        fixed (float* vp = values)
        fixed (float* op = output)
        lock (_gate)
        {
            // Per worker [HeadChunk heads, positions] scores.
            _scratch.EnsureScores(AttentionJob.HeadChunk * positions);
            _attention.Set(qp, kp, vp, op, first, heads, kvHeads, headDim, window);
            For(count * kvHeads * AttentionJob.Chunks(heads / kvHeads), (long)count * heads * positions * headDim, _attention);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void SiluMul(Span<float> gate, ReadOnlySpan<float> up)
    {
        if (up.Length < gate.Length) throw new ArgumentException("up is shorter than gate");
        fixed (float* gp = gate)
        fixed (float* upp = up)
        {
            nint i = 0;
            var one = S.Broadcast(1f);
            for (; i + S.Count <= gate.Length; i += S.Count)
            {
                var g = S.Load(gp + i);
                S.Store(S.Multiply(S.Divide(g, S.Add(one, SimdMath.Exp<S, V>(S.Subtract(S.Zero, g)))), S.Load(upp + i)), gp + i);
            }

            for (; i < gate.Length; i++) gp[i] = gp[i] / (1f + MathF.Exp(-gp[i])) * upp[i];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Add(Span<float> x, ReadOnlySpan<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("y is shorter than x");
        fixed (float* xp = x)
        fixed (float* yp = y)
        {
            nint i = 0;
            for (; i + S.Count <= x.Length; i += S.Count) S.Store(S.Add(S.Load(xp + i), S.Load(yp + i)), xp + i);
            for (; i < x.Length; i++) xp[i] += yp[i];
        }
    }

    /// <summary>Σ a[i] · b[i] with one vector accumulator, then the tail in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(float* a, float* b, int n)
    {
        var acc = S.Zero;
        nint i = 0;
        for (; i + S.Count <= n; i += S.Count) acc = S.MultiplyAdd(S.Load(a + i), S.Load(b + i), acc);
        var sum = S.Sum(acc);
        for (; i < n; i++) sum = MathF.FusedMultiplyAdd(a[i], b[i], sum);
        return sum;
    }

    /// <summary>Converts row <paramref name="index"/> of a tensor of any element type and layout to f32.</summary>
    private static void ReadRow(in Tensor tensor, int index, float* destination)
    {
        var columns = tensor.Columns;
        var rowBytes = tensor.RowByteCount;
        if (tensor.Layout == TensorLayout.Interleaved)
        {
            tensor.ReadRow(index, new Span<float>(destination, columns));
            return;
        }

        var row = tensor.Pointer + index * rowBytes;
        switch (tensor.Type)
        {
            case DType.F32: Buffer.MemoryCopy(row, destination, rowBytes, rowBytes); break;
            case DType.F16 when tensor.Finite: Convert<FiniteF16Row>(row, destination, columns); break;
            case DType.F16: Convert<F16Row>(row, destination, columns); break;
            case DType.BF16: Convert<BF16Row>(row, destination, columns); break;
            default: Quants.Dequantize(tensor.Type, new ReadOnlySpan<byte>(row, checked((int)rowBytes)), new Span<float>(destination, columns)); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Convert<W>(byte* row, float* destination, int columns) where W : IWeightRow
    {
        nint i = 0;
        for (; i + 2 * S.Count <= columns; i += 2 * S.Count)
        {
            W.Load<S, V>(row, i, out var low, out var high);
            S.Store(low, destination + i);
            S.Store(high, destination + i + S.Count);
        }

        for (; i < columns; i++) destination[i] = W.Scalar(row, i);
    }

    /// <summary>Per-worker buffers, allocated once and grown only when a larger model or context needs more.</summary>
    private sealed class Scratch(int workers, QuantDot.Path path)
    {
        private readonly float[][] _tiles = new float[workers][];
        private readonly float[][] _scores = new float[workers][];
        private sbyte[] _quants = [];
        private float[] _quantScales = [];
        private float[] _quantSums = [];
        private int[] _quantOffsets = [];

        public QuantDot.Path Path => path;

        /// <summary>Room for activations quantized to int8 blocks: the values, then <see cref="ActivationScales"/>.</summary>
        public sbyte* Activations(int values)
        {
            if (_quants.Length < values)
            {
                _quants = GC.AllocateUninitializedArray<sbyte>(values, pinned: true);
                _quantScales = GC.AllocateUninitializedArray<float>(values / QuantDot.BlockSize, pinned: true);
                _quantSums = GC.AllocateUninitializedArray<float>(values / QuantDot.BlockSize, pinned: true);
                _quantOffsets = GC.AllocateUninitializedArray<int>(values / QuantDot.BlockSize, pinned: true);
            }

            return (sbyte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_quants));
        }

        /// <summary>One scale per block of the activations last sized by <see cref="Activations"/>.</summary>
        public float* ActivationScales => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_quantScales));

        /// <summary>One scaled sum of the quantized values per block.</summary>
        public float* ActivationSums => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_quantSums));

        /// <summary>8 · Σ q per block, as integers.</summary>
        public int* ActivationOffsets => (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_quantOffsets));

        public float* Tile(int worker, int length) => Pinned(ref _tiles[worker], length);

        public float* Scores(int worker) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_scores[worker]));

        public void EnsureScores(int length)
        {
            for (var i = 0; i < _scores.Length; i++) Pinned(ref _scores[i], length);
        }

        private static float* Pinned(ref float[] buffer, int length)
        {
            if (buffer is null || buffer.Length < length) buffer = GC.AllocateUninitializedArray<float>(length, pinned: true);
            return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
        }
    }
}
