using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Exo.Inference.Weights;

namespace Exo.Inference.Kernels;

// Matrix products: the row, row-group and tile dot products and the job that spreads a MatMul over the workers.
internal sealed unsafe partial class SimdKernels<S, V>
{
    // Weight rows that one decode step of a single activation row reads together (see DotRowGroup).
    private const int GroupRows = 4;

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
}
