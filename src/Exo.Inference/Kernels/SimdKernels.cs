using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Exo.Inference.Weights;

namespace Exo.Inference.Kernels;

/// <summary>
/// The fast kernels for one vector width. Every output element is accumulated in the same order whatever the batch
/// size, the thread count or the path (decode or blocked prefill), so one-token steps reproduce a prefill bit for bit.
/// </summary>
internal sealed unsafe class SimdKernels<S, V> : IKernels where S : ISimd<V> where V : struct
{
    // Activation rows up to which a matmul streams each weight row once for all of them (decode and small batches).
    private const int DecodeRows = 4;

    // Weight rows that one decode step of a single activation row reads together (see DotRowGroup).
    private const int GroupRows = 4;

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

    /// <summary>
    /// out[j · stride] = Σ_i x_j[i] · w[i] for the N activation rows x_j = x + j · columns: the weight row is read once
    /// for all of them. Two accumulators per row (low and high halves of each step), then the tail in order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DotRows<W, N>(byte* w, float* x, int columns, float* output, int stride)
        where W : IWeightRow where N : IRowCount
    {
        V a0 = S.Zero, b0 = S.Zero, a1 = S.Zero, b1 = S.Zero, a2 = S.Zero, b2 = S.Zero, a3 = S.Zero, b3 = S.Zero;
        float* x0 = x, x1 = x + columns, x2 = x + 2 * columns, x3 = x + 3 * columns;
        nint i = 0;
        var c = S.Count;
        for (; i + 2 * c <= columns; i += 2 * c)
        {
            // Stored rows stream from memory and gain from a prefetch ahead; f32 rows here are prefill tiles already in cache.
            if (Sse.IsSupported && typeof(W) != typeof(F32Row)) Sse.Prefetch0(w + i * W.ElementBytes + QuantDot.PrefetchBytes);
            W.Load<S, V>(w, i, out var low, out var high);
            a0 = S.MultiplyAdd(S.Load(x0 + i), low, a0);
            b0 = S.MultiplyAdd(S.Load(x0 + i + c), high, b0);
            if (N.Value > 1)
            {
                a1 = S.MultiplyAdd(S.Load(x1 + i), low, a1);
                b1 = S.MultiplyAdd(S.Load(x1 + i + c), high, b1);
            }

            if (N.Value > 2)
            {
                a2 = S.MultiplyAdd(S.Load(x2 + i), low, a2);
                b2 = S.MultiplyAdd(S.Load(x2 + i + c), high, b2);
            }

            if (N.Value > 3)
            {
                a3 = S.MultiplyAdd(S.Load(x3 + i), low, a3);
                b3 = S.MultiplyAdd(S.Load(x3 + i + c), high, b3);
            }
        }

        float s0 = S.Sum(S.Add(a0, b0)), s1 = S.Sum(S.Add(a1, b1)), s2 = S.Sum(S.Add(a2, b2)), s3 = S.Sum(S.Add(a3, b3));
        for (; i < columns; i++)
        {
            var wi = W.Scalar(w, i);
            s0 = MathF.FusedMultiplyAdd(x0[i], wi, s0);
            if (N.Value > 1) s1 = MathF.FusedMultiplyAdd(x1[i], wi, s1);
            if (N.Value > 2) s2 = MathF.FusedMultiplyAdd(x2[i], wi, s2);
            if (N.Value > 3) s3 = MathF.FusedMultiplyAdd(x3[i], wi, s3);
        }

        output[0] = s0;
        if (N.Value > 1) output[stride] = s1;
        if (N.Value > 2) output[2 * stride] = s2;
        if (N.Value > 3) output[3 * stride] = s3;
    }

    /// <summary>
    /// Four consecutive weight rows against one activation row (decode): each activation load serves four rows and their
    /// eight independent accumulators hide the multiply-add latency that leaves a single row's two chains waiting. Each
    /// row is summed exactly as <see cref="DotRows{W, N}"/> sums it (same accumulators, same order), so the outputs are
    /// bit-identical to the one-row path. It leaves each row's vector sum in output for the caller to add the scalar
    /// tail: a call anywhere in this method would make the JIT keep the accumulators on the stack.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void DotRowGroup<W>(byte* w, long rowBytes, float* x, int columns, float* output) where W : IWeightRow
    {
        byte* w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes;
        V a0 = S.Zero, b0 = S.Zero, a1 = S.Zero, b1 = S.Zero, a2 = S.Zero, b2 = S.Zero, a3 = S.Zero, b3 = S.Zero;
        nint i = 0;
        var c = S.Count;
        for (; i + 2 * c <= columns; i += 2 * c)
        {
            // Rows after the group, at this column: a fixed distance ahead would land inside the group's own rows.
            if (Sse.IsSupported && typeof(W) != typeof(F32Row))
            {
                var ahead = i * W.ElementBytes + GroupRows * rowBytes;
                Sse.Prefetch0(w0 + ahead);
                Sse.Prefetch0(w1 + ahead);
                Sse.Prefetch0(w2 + ahead);
                Sse.Prefetch0(w3 + ahead);
            }

            W.Load<S, V>(w0, i, out var l, out var h);
            a0 = S.MultiplyAdd(S.Load(x + i), l, a0);
            b0 = S.MultiplyAdd(S.Load(x + i + c), h, b0);
            W.Load<S, V>(w1, i, out l, out h);
            a1 = S.MultiplyAdd(S.Load(x + i), l, a1);
            b1 = S.MultiplyAdd(S.Load(x + i + c), h, b1);
            W.Load<S, V>(w2, i, out l, out h);
            a2 = S.MultiplyAdd(S.Load(x + i), l, a2);
            b2 = S.MultiplyAdd(S.Load(x + i + c), h, b2);
            W.Load<S, V>(w3, i, out l, out h);
            a3 = S.MultiplyAdd(S.Load(x + i), l, a3);
            b3 = S.MultiplyAdd(S.Load(x + i + c), h, b3);
        }

        output[0] = S.Sum(S.Add(a0, b0));
        output[1] = S.Sum(S.Add(a1, b1));
        output[2] = S.Sum(S.Add(a2, b2));
        output[3] = S.Sum(S.Add(a3, b3));
    }

    /// <summary>The columns [i, columns) that do not fill a vector step, added to <paramref name="sum"/> in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tail<W>(float sum, byte* w, float* x, nint i, int columns) where W : IWeightRow
    {
        for (; i < columns; i++) sum = MathF.FusedMultiplyAdd(x[i], W.Scalar(w, i), sum);
        return sum;
    }

    /// <summary>
    /// A prefill tile: weight rows [0, count) (rowBytes apart, in cache) against activation rows [0, n), weight rows two
    /// by two against two activation rows (four on AVX-512), then what is left over row by row. Two weight rows share each activation load and two activation rows each weight
    /// load, which halves what a step reads from L2 against one weight row with four activation rows (F32, 2048 columns,
    /// in a loop of its own: 29 -> 45 GMAC/s; 2048² f16 prefill of 64 rows: 18.9 -> 22.5). Streamed weights (decode
    /// batches) stay with one row and four activation rows: converting each f16 row twice cost more (17 -> 11 GMAC/s).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tiles<W>(byte* w, long rowBytes, int count, float* x, int n, int columns, float* y, int rows)
        where W : IWeightRow
    {
        // An activation pair (or quad) stays in L1 while the tile's rows pass from L2.
        var pairs = count & ~1;
        var t = n & ~1;
        var u = 0;
        if (typeof(V) == typeof(Vector512<float>))
        {
            for (; u + 4 <= n; u += 4)
            {
                for (var r = 0; r < pairs; r += 2) DotTile<W, Rows4>(w + r * rowBytes, rowBytes, x + (long)u * columns, columns, y + (long)u * rows + r, rows);
            }
        }

        for (; u < t; u += 2)
        {
            for (var r = 0; r < pairs; r += 2) DotTile<W, Rows2>(w + r * rowBytes, rowBytes, x + (long)u * columns, columns, y + (long)u * rows + r, rows);
        }

        for (var r = 0; r < pairs; r++)
        {
            for (var rest = t; rest < n; rest++) DotRows<W, Rows1>(w + r * rowBytes, x + (long)rest * columns, columns, y + (long)rest * rows + r, rows);
        }

        for (var r = pairs; r < count; r++) RowAgainstAll<W>(w + r * rowBytes, x, n, columns, y + r, rows);
    }

    /// <summary>
    /// Two weight rows against N (two or four) activation rows: y[t · stride + r] for r in {0, 1} and t &lt; N, each summed
    /// exactly as <see cref="DotRows{W, N}"/> sums it (the low and high accumulators of each step, then the tail in
    /// order). Four rows only where AVX-512's 32 registers hold the sixteen accumulators: each pair of weight loads then
    /// serves four activation rows, three loads per four multiply-adds instead of one each.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void DotTile<W, N>(byte* w, long rowBytes, float* x, int columns, float* y, int stride)
        where W : IWeightRow where N : IRowCount
    {
        byte* w0 = w, w1 = w + rowBytes;
        float* x0 = x, x1 = x + columns, x2 = x + 2 * columns, x3 = x + 3 * columns;
        V a00 = S.Zero, b00 = S.Zero, a10 = S.Zero, b10 = S.Zero, a01 = S.Zero, b01 = S.Zero, a11 = S.Zero, b11 = S.Zero;
        V a02 = S.Zero, b02 = S.Zero, a12 = S.Zero, b12 = S.Zero, a03 = S.Zero, b03 = S.Zero, a13 = S.Zero, b13 = S.Zero;
        nint i = 0;
        var c = S.Count;
        for (; i + 2 * c <= columns; i += 2 * c)
        {
            W.Load<S, V>(w0, i, out var l0, out var h0);
            W.Load<S, V>(w1, i, out var l1, out var h1);
            TileStep(x0 + i, l0, h0, l1, h1, ref a00, ref b00, ref a10, ref b10);
            TileStep(x1 + i, l0, h0, l1, h1, ref a01, ref b01, ref a11, ref b11);
            if (N.Value > 2)
            {
                TileStep(x2 + i, l0, h0, l1, h1, ref a02, ref b02, ref a12, ref b12);
                TileStep(x3 + i, l0, h0, l1, h1, ref a03, ref b03, ref a13, ref b13);
            }
        }

        y[0] = Tail<W>(S.Sum(S.Add(a00, b00)), w0, x0, i, columns);
        y[1] = Tail<W>(S.Sum(S.Add(a10, b10)), w1, x0, i, columns);
        y[stride] = Tail<W>(S.Sum(S.Add(a01, b01)), w0, x1, i, columns);
        y[stride + 1] = Tail<W>(S.Sum(S.Add(a11, b11)), w1, x1, i, columns);
        if (N.Value > 2)
        {
            y[2 * stride] = Tail<W>(S.Sum(S.Add(a02, b02)), w0, x2, i, columns);
            y[2 * stride + 1] = Tail<W>(S.Sum(S.Add(a12, b12)), w1, x2, i, columns);
            y[3 * stride] = Tail<W>(S.Sum(S.Add(a03, b03)), w0, x3, i, columns);
            y[3 * stride + 1] = Tail<W>(S.Sum(S.Add(a13, b13)), w1, x3, i, columns);
        }
    }

    /// <summary>One step of <see cref="DotTile{W, N}"/>: one activation row's two halves against both weight rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TileStep(float* x, V l0, V h0, V l1, V h1, ref V a0, ref V b0, ref V a1, ref V b1)
    {
        V xl = S.Load(x), xh = S.Load(x + S.Count);
        a0 = S.MultiplyAdd(xl, l0, a0);
        b0 = S.MultiplyAdd(xh, h0, b0);
        a1 = S.MultiplyAdd(xl, l1, a1);
        b1 = S.MultiplyAdd(xh, h1, b1);
    }

    /// <summary>One weight row against activation rows [t0, n) in groups of four.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowAgainstAll<W>(byte* w, float* x, int n, int columns, float* y, int rows)
        where W : IWeightRow
    {
        var t = 0;
        for (; t + 4 <= n; t += 4) DotRows<W, Rows4>(w, x + (long)t * columns, columns, y + (long)t * rows, rows);
        switch (n - t)
        {
            case 3: DotRows<W, Rows3>(w, x + (long)t * columns, columns, y + (long)t * rows, rows); break;
            case 2: DotRows<W, Rows2>(w, x + (long)t * columns, columns, y + (long)t * rows, rows); break;
            case 1: DotRows<W, Rows1>(w, x + (long)t * columns, columns, y + (long)t * rows, rows); break;
        }
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

    /// <summary>
    /// y = x · wᵀ + bias. Items are groups of eight rows for interleaved weights; otherwise weight rows when each row is
    /// streamed once for all activation rows (decode), else tiles of rows (prefill, and types without an in-place
    /// kernel, which are converted to f32 per tile).
    /// </summary>
    private sealed class MatMulJob(Scratch scratch) : IParallelWork
    {
        private float* _x, _y, _bias;
        private sbyte* _xq;
        private float* _xs, _xsum;
        private int* _offsets;
        private int _n;
        private Tensor _w;

        /// <summary>Rows per item: 0 streams single rows, -1 takes interleaved groups, more converts tiles of that many rows.</summary>
        public int Tile { get; set; }

        public void Set(float* x, int n, in Tensor w, float* bias, float* y, sbyte* xq, float* xs, float* xsum, int* offsets)
        {
            _xsum = xsum;
            _offsets = offsets;
            _x = x;
            _n = n;
            _w = w;
            _bias = bias;
            _y = y;
            _xq = xq;
            _xs = xs;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int worker, int start, int end)
        {
            var (first, last) = Tile switch
            {
                0 => (start, end),
                < 0 => (start * InterleavedRows.GroupRows, end * InterleavedRows.GroupRows),
                _ => (start * Tile, Math.Min(_w.Rows, end * Tile)),
            };
            switch (_w.Type)
            {
                case DType.Q8_0 or DType.Q4_0 or DType.Q4_K when Tile < 0: Interleaved(start, end); break;
                case DType.F32 when Tile == 0: Stream<F32Row>(first, last); break;
                case DType.F16 when Tile == 0 && _w.Finite: Stream<FiniteF16Row>(first, last); break;
                case DType.F16 when Tile == 0: Stream<F16Row>(first, last); break;
                case DType.BF16 when Tile == 0: Stream<BF16Row>(first, last); break;
                case DType.Q8_0 when _xq != null: Quantized<Q8Block>(first, last); break;
                case DType.Q4_0 when _xq != null: Quantized<Q4Block>(first, last); break;
                default: Converted(worker, first, last); break;
            }

            if (_bias is null) return;
            for (var t = 0; t < _n; t++)
            {
                var yt = _y + (long)t * _w.Rows;
                for (var o = first; o < last; o++) yt[o] += _bias[o];
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Stream<W>(int first, int last) where W : IWeightRow
        {
            int rows = _w.Rows, columns = _w.Columns;
            var rowBytes = _w.RowByteCount;
            var o = first;
            // The exact f16 conversion (tensors holding infinities or NaN) needs five vector constants besides the group's
            // eight accumulators: more than AVX2's sixteen registers, so the JIT would spill; it keeps the one-row path.
            if (_n == 1 && typeof(W) != typeof(F16Row))
            {
                // The group kernel leaves the columns past the last whole vector step to this scalar tail.
                var vectorColumns = columns - columns % (2 * S.Count);
                for (; o + GroupRows <= last; o += GroupRows)
                {
                    var w = _w.Pointer + o * rowBytes;
                    DotRowGroup<W>(w, rowBytes, _x, columns, _y + o);
                    for (var r = 0; r < GroupRows; r++) _y[o + r] = Tail<W>(_y[o + r], w + r * rowBytes, _x, vectorColumns, columns);
                }
            }

            for (; o < last; o++) RowAgainstAll<W>(_w.Pointer + o * rowBytes, _x, _n, columns, _y + o, rows);
        }

        /// <summary>Converts each tile of weight rows to f32 once; four activation rows at a time pass over it from cache.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Converted(int worker, int first, int last)
        {
            int rows = _w.Rows, columns = _w.Columns;
            var tile = scratch.Tile(worker, Tile * columns);
            for (var o0 = first; o0 < last; o0 += Tile)
            {
                var count = Math.Min(Tile, last - o0);
                for (var r = 0; r < count; r++) ReadRow(_w, o0 + r, tile + (long)r * columns);
                Tiles<F32Row>((byte*)tile, columns * sizeof(float), count, _x, _n, columns, _y + o0, rows);
            }
        }

        /// <summary>Groups [first, last) of interleaved rows against every activation row, four at a time.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Interleaved(int first, int last)
        {
            int rows = _w.Rows, columns = _w.Columns, blocks = columns / QuantDot.BlockSize;
            var groupBytes = InterleavedRows.GroupBytes(_w.Type, columns);
            var path = scratch.Path;
            for (var g = first; g < last; g++)
            {
                var group = _w.Pointer + g * groupBytes;
                for (var t = 0; t < _n; t += 4)
                {
                    var xq = _xq + (long)t * columns;
                    var xs = _xs + (long)t * blocks;
                    var offsets = _offsets + (long)t * blocks;
                    var sums = _xsum + (long)t * blocks;
                    var y = _y + (long)t * rows + g * InterleavedRows.GroupRows;
                    switch (Math.Min(4, _n - t))
                    {
                        case 4: InterleavedDot.Run<Rows4>(path, _w.Type, group, columns, xq, xs, offsets, sums, y, rows); break;
                        case 3: InterleavedDot.Run<Rows3>(path, _w.Type, group, columns, xq, xs, offsets, sums, y, rows); break;
                        case 2: InterleavedDot.Run<Rows2>(path, _w.Type, group, columns, xq, xs, offsets, sums, y, rows); break;
                        default: InterleavedDot.Run<Rows1>(path, _w.Type, group, columns, xq, xs, offsets, sums, y, rows); break;
                    }
                }
            }
        }

        /// <summary>Quantized rows read in place against the int8 activations, tile by tile when prefilling.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Quantized<B>(int first, int last) where B : IQuantBlock
        {
            int rows = _w.Rows, blocks = _w.Columns / QuantDot.BlockSize;
            var rowBytes = _w.RowByteCount;
            var path = scratch.Path;
            var step = Tile == 0 ? last - first : Tile;
            for (var o0 = first; o0 < last; o0 += step)
            {
                var count = Math.Min(step, last - o0);
                for (var t = 0; t < _n; t += 4)
                {
                    var group = Math.Min(4, _n - t);
                    var xq = _xq + (long)t * _w.Columns;
                    var xs = _xs + (long)t * blocks;
                    var xsum = _xsum + (long)t * blocks;
                    for (var r = 0; r < count; r++)
                    {
                        var w = _w.Pointer + (o0 + r) * rowBytes;
                        var y = _y + (long)t * rows + o0 + r;
                        switch (group)
                        {
                            case 4: QuantDot.DotRows<B, Rows4>(path, w, blocks, xq, xs, xsum, y, rows); break;
                            case 3: QuantDot.DotRows<B, Rows3>(path, w, blocks, xq, xs, xsum, y, rows); break;
                            case 2: QuantDot.DotRows<B, Rows2>(path, w, blocks, xq, xs, xsum, y, rows); break;
                            default: QuantDot.DotRows<B, Rows1>(path, w, blocks, xq, xs, xsum, y, rows); break;
                        }
                    }
                }
            }
        }
    }

    /// <summary>Causal attention, one item per query, key/value head and chunk of the query heads that share it.</summary>
    private sealed class AttentionJob(Scratch scratch) : IParallelWork
    {
        /// <summary>Query heads that read each key and value row together (see <see cref="HeadScores{N}"/>).</summary>
        public const int HeadChunk = 4;

        // Key and value rows prefetched this many positions ahead.
        private const int AheadRows = 8;

        private float* _q, _k, _v, _output;
        private int _first, _heads, _kvHeads, _headDim, _window;

        /// <summary>Chunks per key/value head: items split below a key/value head, so one shared by every query head still spreads over all workers.</summary>
        public static int Chunks(int group) => (group + HeadChunk - 1) / HeadChunk;

        public void Set(float* q, float* k, float* v, float* output, int first, int heads, int kvHeads, int headDim, int window)
        {
            _q = q;
            _k = k;
            _v = v;
            _output = output;
            (_first, _heads, _kvHeads, _headDim, _window) = (first, heads, kvHeads, headDim, window);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int worker, int start, int end)
        {
            var d = _headDim;
            var kvDim = (long)_kvHeads * d;
            var group = _heads / _kvHeads;
            var chunks = Chunks(group);
            var scores = scratch.Scores(worker);
            for (var item = start; item < end; item++)
            {
                int t = item / (_kvHeads * chunks), g = item / chunks % _kvHeads, c = item % chunks;
                var position = _first + t;
                var from = _window > 0 ? Math.Max(0, position - _window + 1) : 0;
                var count = position - from + 1;
                var kv = from * kvDim + (long)g * d;
                var h = g * group + c * HeadChunk;
                var head = ((long)t * _heads + h) * d;
                switch (Math.Min(HeadChunk, (g + 1) * group - h))
                {
                    case 4: Heads<Rows4>(_q + head, _k + kv, _v + kv, kvDim, d, count, scores, _output + head); break;
                    case 3: Heads<Rows3>(_q + head, _k + kv, _v + kv, kvDim, d, count, scores, _output + head); break;
                    case 2: Heads<Rows2>(_q + head, _k + kv, _v + kv, kvDim, d, count, scores, _output + head); break;
                    default: Heads<Rows1>(_q + head, _k + kv, _v + kv, kvDim, d, count, scores, _output + head); break;
                }
            }
        }

        /// <summary>
        /// Attention of N consecutive query heads (d apart in q and output) over count key and value rows stride apart;
        /// scores holds N rows of count scores.
        /// </summary>
        private static void Heads<N>(float* q, float* k, float* v, long stride, int d, int count, float* scores, float* output)
            where N : IRowCount
        {
            var max = stackalloc float[HeadChunk];
            HeadScores<N>(q, k, stride, d, count, 1f / MathF.Sqrt(d), scores, max);
            var inverse = stackalloc float[HeadChunk];
            for (var j = 0; j < N.Value; j++) inverse[j] = 1f / Softmax(scores + j * count, count, max[j]);
            HeadSums<N>(scores, v, stride, d, count, output);
            for (var j = 0; j < N.Value; j++)
            {
                var o = output + j * d;
                for (var i = 0; i < d; i++) o[i] *= inverse[j];
            }
        }

        /// <summary>
        /// scores[j · count + p] = q_j · k_p × scale for the N heads; max[j] gets each head's largest. Each key row is
        /// loaded once for all N heads, which also gives the core N independent chains; every score is summed exactly
        /// as <see cref="Dot"/> sums it.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void HeadScores<N>(float* q, float* k, long stride, int d, int count, float scale, float* scores, float* max)
            where N : IRowCount
        {
            float* q0 = q, q1 = q + d, q2 = q + 2 * d, q3 = q + 3 * d;
            float m0 = float.NegativeInfinity, m1 = m0, m2 = m0, m3 = m0;
            for (var p = 0; p < count; p++, k += stride)
            {
                // Rows lie a whole position apart, in steps the hardware prefetchers do not follow.
                if (Sse.IsSupported)
                {
                    for (var line = 0; line < d; line += 16) Sse.Prefetch0(k + AheadRows * stride + line);
                }

                V a0 = S.Zero, a1 = S.Zero, a2 = S.Zero, a3 = S.Zero;
                nint i = 0;
                for (; i + S.Count <= d; i += S.Count)
                {
                    var ki = S.Load(k + i);
                    a0 = S.MultiplyAdd(S.Load(q0 + i), ki, a0);
                    if (N.Value > 1) a1 = S.MultiplyAdd(S.Load(q1 + i), ki, a1);
                    if (N.Value > 2) a2 = S.MultiplyAdd(S.Load(q2 + i), ki, a2);
                    if (N.Value > 3) a3 = S.MultiplyAdd(S.Load(q3 + i), ki, a3);
                }

                float s0 = S.Sum(a0), s1 = N.Value > 1 ? S.Sum(a1) : 0, s2 = N.Value > 2 ? S.Sum(a2) : 0, s3 = N.Value > 3 ? S.Sum(a3) : 0;
                for (; i < d; i++)
                {
                    s0 = MathF.FusedMultiplyAdd(q0[i], k[i], s0);
                    if (N.Value > 1) s1 = MathF.FusedMultiplyAdd(q1[i], k[i], s1);
                    if (N.Value > 2) s2 = MathF.FusedMultiplyAdd(q2[i], k[i], s2);
                    if (N.Value > 3) s3 = MathF.FusedMultiplyAdd(q3[i], k[i], s3);
                }

                scores[p] = s0 * scale;
                m0 = MathF.Max(m0, scores[p]);
                if (N.Value > 1) m1 = MathF.Max(m1, scores[count + p] = s1 * scale);
                if (N.Value > 2) m2 = MathF.Max(m2, scores[2 * count + p] = s2 * scale);
                if (N.Value > 3) m3 = MathF.Max(m3, scores[3 * count + p] = s3 * scale);
            }

            (max[0], max[1], max[2], max[3]) = (m0, m1, m2, m3);
        }

        /// <summary>
        /// output_j = Σ_p weights[j · count + p] · v_p for the N heads, two vectors of each head's output at a time held in
        /// registers while every value row passes (one load of a row serves all N heads).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void HeadSums<N>(float* weights, float* v, long stride, int d, int count, float* output)
            where N : IRowCount
        {
            float* w0 = weights, w1 = weights + count, w2 = weights + 2 * count, w3 = weights + 3 * count;
            var c = 0;
            for (; c + 2 * S.Count <= d; c += 2 * S.Count)
            {
                V a0 = S.Zero, b0 = S.Zero, a1 = S.Zero, b1 = S.Zero, a2 = S.Zero, b2 = S.Zero, a3 = S.Zero, b3 = S.Zero;
                var row = v + c;
                for (var p = 0; p < count; p++, row += stride)
                {
                    if (Sse.IsSupported) Sse.Prefetch0(row + AheadRows * stride);
                    V x = S.Load(row), y = S.Load(row + S.Count);
                    var w = S.Broadcast(w0[p]);
                    (a0, b0) = (S.MultiplyAdd(w, x, a0), S.MultiplyAdd(w, y, b0));
                    if (N.Value > 1)
                    {
                        w = S.Broadcast(w1[p]);
                        (a1, b1) = (S.MultiplyAdd(w, x, a1), S.MultiplyAdd(w, y, b1));
                    }

                    if (N.Value > 2)
                    {
                        w = S.Broadcast(w2[p]);
                        (a2, b2) = (S.MultiplyAdd(w, x, a2), S.MultiplyAdd(w, y, b2));
                    }

                    if (N.Value > 3)
                    {
                        w = S.Broadcast(w3[p]);
                        (a3, b3) = (S.MultiplyAdd(w, x, a3), S.MultiplyAdd(w, y, b3));
                    }
                }

                Store2(a0, b0, output + c);
                if (N.Value > 1) Store2(a1, b1, output + d + c);
                if (N.Value > 2) Store2(a2, b2, output + 2 * d + c);
                if (N.Value > 3) Store2(a3, b3, output + 3 * d + c);
            }

            // Head sizes that are not whole pairs of vectors: the rest one head at a time, in the same order.
            for (var j = 0; j < N.Value; j++)
            {
                var wj = weights + j * count;
                var oj = output + j * d;
                var e = c;
                for (; e + S.Count <= d; e += S.Count)
                {
                    var a = S.Zero;
                    var row = v + e;
                    for (var p = 0; p < count; p++, row += stride) a = S.MultiplyAdd(S.Broadcast(wj[p]), S.Load(row), a);
                    S.Store(a, oj + e);
                }

                for (; e < d; e++)
                {
                    var a = 0f;
                    for (var p = 0; p < count; p++) a = MathF.FusedMultiplyAdd(wj[p], v[p * stride + e], a);
                    oj[e] = a;
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Store2(V low, V high, float* destination)
        {
            S.Store(low, destination);
            S.Store(high, destination + S.Count);
        }

        /// <summary>
        /// scores[i] = exp(scores[i] − max) for the n scores; returns their sum. Vector exponentials: one scalar
        /// exponential per position cost more than the rest of a decode step's attention.
        /// </summary>
        private static float Softmax(float* scores, int n, float max)
        {
            var vmax = S.Broadcast(max);
            var sum = S.Zero;
            nint i = 0;
            for (; i + S.Count <= n; i += S.Count)
            {
                var e = SimdMath.Exp<S, V>(S.Subtract(S.Load(scores + i), vmax));
                S.Store(e, scores + i);
                sum = S.Add(sum, e);
            }

            var total = S.Sum(sum);
            for (; i < n; i++)
            {
                var e = MathF.Exp(scores[i] - max);
                scores[i] = e;
                total += e;
            }

            return total;
        }
    }
}
