using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using Exo.Inference.Weights;

namespace Exo.Inference.Kernels;

/// <summary>
/// Integer dot products of <see cref="TensorLayout.Interleaved"/> Q8_0, Q4_0 and Q4_K weights (eight rows per group) with
/// activations quantized to int8 blocks, on AVX2. One 256-bit load holds four values of each of the eight rows; four
/// activations broadcast to every lane multiply it, so the eight row sums build up in the eight lanes and one vector of
/// scales applies to all of them. Per block and activation row, Q4_0 adds its products in 16-bit lanes (16 products of
/// at most 15 · 127 each stay below 2^15) and widens once; Q8_0 widens each chunk. Block sums are exact integers,
/// scaled and accumulated in f32 in block order, so a row's result never depends on the batch, the threads or the group.
/// Where the CPU has AVX-VNNI, vpdpbusd multiplies and adds the bytes straight into 32-bit sums: the same integers.
/// </summary>
[SkipLocalsInit]
internal static unsafe class InterleavedDot
{
    private const int GroupRows = InterleavedRows.GroupRows;
    private const int BlockSize = QuantDot.BlockSize;

    // How far ahead of the block being multiplied the group is prefetched. 1B models: on Zen 3 (AVX2, 20 GB/s a core)
    // Q8_0 1-thread decode went 14.5 tok/s with none, 18.3 at 1-2 KiB, 17.7 at 4 KiB, Q4_0 flat from 1 KiB on; on a
    // Zen 4 class EPYC (AVX-VNNI, 35 GB/s a core) 2 -> 8 KiB took Q4_0 from 26.5 / 45.8 to 31 / 58 tok/s (1 / 2
    // threads) and Q8_0 from 16 / 27.6 to 18.3 / 35.7.
    private const int Ahead = 8192;

    /// <summary>
    /// The group kernel for a matrix of <paramref name="type"/> (Q8_0, Q4_0 or Q4_K) on <paramref name="path"/>:
    /// <see cref="InterleavedDotArm"/>'s for Arm, else the x86 one; offsets serve Q4_0 and sums Q4_K (see the kernels).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run<N>(QuantDot.Path path, DType type, byte* group, int columns, sbyte* xq, float* xs, int* offsets, float* sums, float* y, int stride)
        where N : IRowCount
    {
        // IsSupported is a JIT constant: x86 compiles no call to the Arm kernels, nor Arm to the x86 ones. AVX2 or
        // AVX-VNNI is a type argument, so that the kernels' inner steps test nothing (a flag tested at every Q8_0 chunk
        // took 1B Q8_0 prefill from 80-97 to 41-66 tok/s).
        var arm = path == QuantDot.Path.ArmDot && Dp.IsSupported;
        var vnni = path == QuantDot.Path.AvxVnni && AvxVnni.IsSupported;
        var blocks = columns / BlockSize;
        switch (type)
        {
            case DType.Q8_0 when arm: InterleavedDotArm.Group<Q8Block, N>(group, blocks, xq, xs, offsets, y, stride); break;
            case DType.Q8_0 when vnni: Group<Q8Block, N, VnniBytes>(group, blocks, xq, xs, offsets, y, stride); break;
            case DType.Q8_0: Group<Q8Block, N, Avx2Bytes>(group, blocks, xq, xs, offsets, y, stride); break;
            case DType.Q4_0 when arm: InterleavedDotArm.Group<Q4Block, N>(group, blocks, xq, xs, offsets, y, stride); break;
            case DType.Q4_0 when vnni: Group<Q4Block, N, VnniBytes>(group, blocks, xq, xs, offsets, y, stride); break;
            case DType.Q4_0: Group<Q4Block, N, Avx2Bytes>(group, blocks, xq, xs, offsets, y, stride); break;
            case DType.Q4_K when arm: InterleavedDotArm.GroupQ4K<N>(group, columns / 256, xq, xs, sums, y, stride); break;
            case DType.Q4_K when vnni: GroupQ4K<N, VnniBytes>(group, columns / 256, xq, xs, sums, y, stride); break;
            case DType.Q4_K: GroupQ4K<N, Avx2Bytes>(group, columns / 256, xq, xs, sums, y, stride); break;
            default: throw new ArgumentException($"{type} matrices are not interleaved");
        }
    }

    /// <summary>
    /// y[t · stride + j] = row j of the group · activation row t, for the eight rows j and the N activation rows t;
    /// activation row t's quants are xq + t · columns, its block scales xs + t · blocks and its 8 · Σq per block (what
    /// Q4_0's +8 offset subtracts) offsets + t · blocks.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Group<B, N, P>(byte* group, int blocks, sbyte* xq, float* xs, int* offsets, float* y, int stride)
        where B : IQuantBlock where N : IRowCount where P : IBytes
    {
        var chunkBytes = (B.BlockBytes - 2) * GroupRows;
        var scales = (short*)group;
        var values = group + (long)blocks * GroupRows * 2;
        nint columns = blocks * BlockSize, columns3 = 3 * columns, rowBlocks = blocks, rowBlocks3 = 3 * rowBlocks;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var ones = Vector256.Create((short)1);
        var mask = Vector256.Create((byte)0x0F);
        for (var b = 0; b < blocks; b++, values += chunkBytes, scales += GroupRows, xq += BlockSize, xs++, offsets++)
        {
            Sse.Prefetch0(values + Ahead);
            if (chunkBytes > 64) Sse.Prefetch0(values + Ahead + 64);
            if (chunkBytes > 128)
            {
                Sse.Prefetch0(values + Ahead + 128);
                Sse.Prefetch0(values + Ahead + 192);
            }

            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            if (B.Offset)
            {
                NibbleSums<N, P>(values, xq, columns, columns3, mask, ones, ref s0, ref s1, ref s2, ref s3);
                s0 -= Vector256.Create(offsets[0]);
                if (N.Value > 1) s1 -= Vector256.Create(offsets[rowBlocks]);
                if (N.Value > 2) s2 -= Vector256.Create(offsets[2 * rowBlocks]);
                if (N.Value > 3) s3 -= Vector256.Create(offsets[rowBlocks3]);
            }
            else
            {
                // Q8_0: chunk k holds values 4k..4k+3 of each row; their signs move onto the activations.
                for (var k = 0; k < 8; k += 2)
                {
                    Signed<N, P>(values + 32 * k, xq + 4 * k, columns, columns3, ones, ref s0, ref s1, ref s2, ref s3);
                    Signed<N, P>(values + 32 * k + 32, xq + 4 * k + 4, columns, columns3, ones, ref s0, ref s1, ref s2, ref s3);
                }
            }

            var d = HalfBits.FiniteToSingle(Avx2.ConvertToVector256Int32(scales));
            a0 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s0), d * Vector256.Create(xs[0]), a0);
            if (N.Value > 1) a1 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s1), d * Vector256.Create(xs[rowBlocks]), a1);
            if (N.Value > 2) a2 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s2), d * Vector256.Create(xs[2 * rowBlocks]), a2);
            if (N.Value > 3) a3 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s3), d * Vector256.Create(xs[rowBlocks3]), a3);
        }

        a0.Store(y);
        if (N.Value > 1) a1.Store(y + stride);
        if (N.Value > 2) a2.Store(y + 2 * stride);
        if (N.Value > 3) a3.Store(y + 3 * stride);
    }

    /// <summary>
    /// <see cref="Group{B, N}"/> for interleaved Q4_K (see <see cref="InterleavedRows.Q4KSuperBlockBytes"/>): each
    /// 32-value sub-block is a Q4_0-like block of unsigned levels with its own scale d · sc and min dmin · m, so
    /// Σ (d·sc·q − dmin·m) · x = d·sc · Σ q·x (the Q4_0 integer sum) − dmin·m · Σ x, and Σ x is the activations' sums.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void GroupQ4K<N, P>(byte* group, int superBlocks, sbyte* xq, float* xs, float* sums, float* y, int stride)
        where N : IRowCount where P : IBytes
    {
        nint columns = superBlocks * 256, columns3 = 3 * columns, rowBlocks = superBlocks * 8, rowBlocks3 = 3 * rowBlocks;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
        var ones = Vector256.Create((short)1);
        var mask = Vector256.Create((byte)0x0F);
        for (var s = 0; s < superBlocks; s++)
        {
            var record = group + (long)s * InterleavedRows.Q4KSuperBlockBytes;
            var d = HalfBits.FiniteToSingle(Avx2.ConvertToVector256Int32((short*)record));
            var dmin = HalfBits.FiniteToSingle(Avx2.ConvertToVector256Int32((short*)(record + 16)));
            for (var j = 0; j < 8; j++, xq += BlockSize, xs++, sums++)
            {
                var meta = record + 32 + 16 * j;
                var values = record + 160 + 128 * j;
                Sse.Prefetch0(values + Ahead);
                Sse.Prefetch0(values + Ahead + 64);
                Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
                NibbleSums<N, P>(values, xq, columns, columns3, mask, ones, ref s0, ref s1, ref s2, ref s3);
                var scale = d * Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(meta));
                var min = dmin * Vector256.ConvertToSingle(Avx2.ConvertToVector256Int32(meta + 8));
                a0 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s0), scale * Vector256.Create(xs[0]), a0);
                c0 = Vector256.FusedMultiplyAdd(min, Vector256.Create(sums[0]), c0);
                if (N.Value > 1)
                {
                    a1 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s1), scale * Vector256.Create(xs[rowBlocks]), a1);
                    c1 = Vector256.FusedMultiplyAdd(min, Vector256.Create(sums[rowBlocks]), c1);
                }

                if (N.Value > 2)
                {
                    a2 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s2), scale * Vector256.Create(xs[2 * rowBlocks]), a2);
                    c2 = Vector256.FusedMultiplyAdd(min, Vector256.Create(sums[2 * rowBlocks]), c2);
                }

                if (N.Value > 3)
                {
                    a3 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s3), scale * Vector256.Create(xs[rowBlocks3]), a3);
                    c3 = Vector256.FusedMultiplyAdd(min, Vector256.Create(sums[rowBlocks3]), c3);
                }
            }
        }

        (a0 - c0).Store(y);
        if (N.Value > 1) (a1 - c1).Store(y + stride);
        if (N.Value > 2) (a2 - c2).Store(y + 2 * stride);
        if (N.Value > 3) (a3 - c3).Store(y + 3 * stride);
    }

    /// <summary>
    /// One Q4_0-layout block (four chunks: chunk k holds bytes 4k..4k+3 of each row, low nibbles values 4k.., high ones
    /// 16 + 4k..) against each activation row, added to s_t as 32-bit sums: vpdpbusd adds its products straight into
    /// them; AVX2 adds its pair products in 16-bit lanes and widens once. Written out four times: the JIT does not unroll
    /// a loop, whose counting was half a row's work.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void NibbleSums<N, P>(byte* values, sbyte* xq, nint columns, nint columns3, Vector256<byte> mask, Vector256<short> ones,
        ref Vector256<int> s0, ref Vector256<int> s1, ref Vector256<int> s2, ref Vector256<int> s3)
        where N : IRowCount where P : IBytes
    {
        if (P.Vnni)
        {
            NibblesVnni<N>(values, xq, columns, columns3, mask, ref s0, ref s1, ref s2, ref s3);
            NibblesVnni<N>(values + 32, xq + 4, columns, columns3, mask, ref s0, ref s1, ref s2, ref s3);
            NibblesVnni<N>(values + 64, xq + 8, columns, columns3, mask, ref s0, ref s1, ref s2, ref s3);
            NibblesVnni<N>(values + 96, xq + 12, columns, columns3, mask, ref s0, ref s1, ref s2, ref s3);
            return;
        }

        Vector256<short> h0 = default, h1 = default, h2 = default, h3 = default;
        Nibbles<N>(values, xq, columns, columns3, mask, ref h0, ref h1, ref h2, ref h3);
        Nibbles<N>(values + 32, xq + 4, columns, columns3, mask, ref h0, ref h1, ref h2, ref h3);
        Nibbles<N>(values + 64, xq + 8, columns, columns3, mask, ref h0, ref h1, ref h2, ref h3);
        Nibbles<N>(values + 96, xq + 12, columns, columns3, mask, ref h0, ref h1, ref h2, ref h3);
        s0 += Avx2.MultiplyAddAdjacent(h0, ones);
        if (N.Value > 1) s1 += Avx2.MultiplyAddAdjacent(h1, ones);
        if (N.Value > 2) s2 += Avx2.MultiplyAddAdjacent(h2, ones);
        if (N.Value > 3) s3 += Avx2.MultiplyAddAdjacent(h3, ones);
    }

    /// <summary>One Q4_0 chunk against each activation row through vpdpbusd (unsigned nibbles × signed activations).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void NibblesVnni<N>(byte* chunk, sbyte* x, nint columns, nint columns3, Vector256<byte> mask,
        ref Vector256<int> s0, ref Vector256<int> s1, ref Vector256<int> s2, ref Vector256<int> s3)
        where N : IRowCount
    {
        var v = Vector256.Load(chunk);
        var low = v & mask;
        var high = (v.AsUInt16() >>> 4).AsByte() & mask;
        s0 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(s0, low, Broadcast(x)), high, Broadcast(x + 16));
        if (N.Value > 1) s1 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(s1, low, Broadcast(x + columns)), high, Broadcast(x + columns + 16));
        if (N.Value > 2) s2 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(s2, low, Broadcast(x + 2 * columns)), high, Broadcast(x + 2 * columns + 16));
        if (N.Value > 3) s3 = AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(s3, low, Broadcast(x + columns3)), high, Broadcast(x + columns3 + 16));
    }

    /// <summary>One Q4_0 chunk against each activation row: 16-bit pair sums of low nibbles × activations 4k.. and high × 16 + 4k..</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Nibbles<N>(byte* chunk, sbyte* x, nint columns, nint columns3, Vector256<byte> mask,
        ref Vector256<short> h0, ref Vector256<short> h1, ref Vector256<short> h2, ref Vector256<short> h3)
        where N : IRowCount
    {
        var v = Vector256.Load(chunk);
        var low = v & mask;
        var high = (v.AsUInt16() >>> 4).AsByte() & mask;
        h0 += Avx2.MultiplyAddAdjacent(low, Broadcast(x)) + Avx2.MultiplyAddAdjacent(high, Broadcast(x + 16));
        if (N.Value > 1) h1 += Avx2.MultiplyAddAdjacent(low, Broadcast(x + columns)) + Avx2.MultiplyAddAdjacent(high, Broadcast(x + columns + 16));
        if (N.Value > 2) h2 += Avx2.MultiplyAddAdjacent(low, Broadcast(x + 2 * columns)) + Avx2.MultiplyAddAdjacent(high, Broadcast(x + 2 * columns + 16));
        if (N.Value > 3) h3 += Avx2.MultiplyAddAdjacent(low, Broadcast(x + columns3)) + Avx2.MultiplyAddAdjacent(high, Broadcast(x + columns3 + 16));
    }

    /// <summary>One Q8_0 chunk against each activation row, widened to 32-bit sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Signed<N, P>(byte* chunk, sbyte* x, nint columns, nint columns3, Vector256<short> ones,
        ref Vector256<int> s0, ref Vector256<int> s1, ref Vector256<int> s2, ref Vector256<int> s3)
        where N : IRowCount where P : IBytes
    {
        var v = Vector256.Load((sbyte*)chunk);
        var magnitude = Avx2.Abs(v).AsByte();
        s0 = QuantDot.Products<P>(s0, magnitude, Avx2.Sign(Broadcast(x), v), ones);
        if (N.Value > 1) s1 = QuantDot.Products<P>(s1, magnitude, Avx2.Sign(Broadcast(x + columns), v), ones);
        if (N.Value > 2) s2 = QuantDot.Products<P>(s2, magnitude, Avx2.Sign(Broadcast(x + 2 * columns), v), ones);
        if (N.Value > 3) s3 = QuantDot.Products<P>(s3, magnitude, Avx2.Sign(Broadcast(x + columns3), v), ones);
    }

    /// <summary>Four activations, broadcast to the eight lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Broadcast(sbyte* x) => Vector256.Create(*(int*)x).AsSByte();
}
