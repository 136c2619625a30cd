using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Exo.Inference.Weights;

namespace Exo.Inference.Kernels;

/// <summary>
/// Integer dot products of <see cref="TensorLayout.Interleaved"/> Q8_0 and Q4_0 weights (eight rows per group) with
/// activations quantized to int8 blocks. One 256-bit load holds four values of each of the eight rows; four activations
/// broadcast to every lane multiply it, so the eight row sums build up in the eight lanes and one vector of scales
/// applies to all of them. Per block and activation row, Q4_0 adds its products in 16-bit lanes (16 products of at most
/// 15 · 127 each stay below 2^15) and widens once; Q8_0 widens each chunk. Block sums are exact integers, scaled and
/// accumulated in f32 in block order, so a row's result never depends on the batch, the thread count or the group.
/// </summary>
[SkipLocalsInit]
internal static unsafe class InterleavedDot
{
    private const int GroupRows = InterleavedRows.GroupRows;
    private const int BlockSize = QuantDot.BlockSize;

    /// <summary>
    /// y[t · stride + j] = row j of the group · activation row t, for the eight rows j and the N activation rows t;
    /// activation row t's quants are xq + t · columns, its block scales xs + t · blocks and its 8 · Σq per block (what
    /// Q4_0's +8 offset subtracts) offsets + t · blocks.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Group<B, N>(bool vnni, byte* group, int blocks, sbyte* xq, float* xs, int* offsets, float* y, int stride)
        where B : IQuantBlock where N : IRowCount
    {
        var chunkBytes = (B.BlockBytes - 2) * GroupRows;
        var scales = (ushort*)group;
        var values = group + (long)blocks * GroupRows * 2;
        nint columns = blocks * BlockSize, columns3 = 3 * columns;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var ones = Vector256.Create((short)1);
        var mask = Vector256.Create((byte)0x0F);
        for (var b = 0; b < blocks; b++, values += chunkBytes, scales += GroupRows, xq += BlockSize)
        {
            Sse.Prefetch0(values + QuantDot.PrefetchBytes);
            if (chunkBytes > 64) Sse.Prefetch0(values + QuantDot.PrefetchBytes + 64);
            if (chunkBytes > 128)
            {
                Sse.Prefetch0(values + QuantDot.PrefetchBytes + 128);
                Sse.Prefetch0(values + QuantDot.PrefetchBytes + 192);
            }

            Vector256<int> s0, s1 = default, s2 = default, s3 = default;
            if (B.Offset)
            {
                // Q4_0: chunk k holds bytes 4k..4k+3 of each row; low nibbles are values 4k.., high ones 16 + 4k..
                Vector256<short> h0 = default, h1 = default, h2 = default, h3 = default;
                s0 = default;
                for (var k = 0; k < 4; k++)
                {
                    var v = Vector256.Load(values + 32 * k);
                    var low = v & mask;
                    var high = (v.AsUInt16() >>> 4).AsByte() & mask;
                    var x = xq + 4 * k;
                    if (vnni)
                    {
                        s0 = Nibbles(s0, low, high, x);
                        if (N.Value > 1) s1 = Nibbles(s1, low, high, x + columns);
                        if (N.Value > 2) s2 = Nibbles(s2, low, high, x + 2 * columns);
                        if (N.Value > 3) s3 = Nibbles(s3, low, high, x + columns3);
                    }
                    else
                    {
                        h0 += Nibbles(low, high, x);
                        if (N.Value > 1) h1 += Nibbles(low, high, x + columns);
                        if (N.Value > 2) h2 += Nibbles(low, high, x + 2 * columns);
                        if (N.Value > 3) h3 += Nibbles(low, high, x + columns3);
                    }
                }

                if (!vnni)
                {
                    s0 = Avx2.MultiplyAddAdjacent(h0, ones);
                    if (N.Value > 1) s1 = Avx2.MultiplyAddAdjacent(h1, ones);
                    if (N.Value > 2) s2 = Avx2.MultiplyAddAdjacent(h2, ones);
                    if (N.Value > 3) s3 = Avx2.MultiplyAddAdjacent(h3, ones);
                }

                s0 -= Vector256.Create(offsets[b]);
                if (N.Value > 1) s1 -= Vector256.Create(offsets[blocks + b]);
                if (N.Value > 2) s2 -= Vector256.Create(offsets[2 * blocks + b]);
                if (N.Value > 3) s3 -= Vector256.Create(offsets[3 * blocks + b]);
            }
            else
            {
                // Q8_0: chunk k holds values 4k..4k+3 of each row; their signs move onto the activations.
                s0 = default;
                for (var k = 0; k < 8; k++)
                {
                    var v = Vector256.Load((sbyte*)values + 32 * k);
                    var magnitude = Avx2.Abs(v);
                    var x = xq + 4 * k;
                    s0 = Signed(vnni, s0, magnitude, v, x, ones);
                    if (N.Value > 1) s1 = Signed(vnni, s1, magnitude, v, x + columns, ones);
                    if (N.Value > 2) s2 = Signed(vnni, s2, magnitude, v, x + 2 * columns, ones);
                    if (N.Value > 3) s3 = Signed(vnni, s3, magnitude, v, x + columns3, ones);
                }
            }

            var d = HalfBits.ToSingle(Avx2.ConvertToVector256Int32(scales).AsUInt32());
            a0 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s0), d * Vector256.Create(xs[b]), a0);
            if (N.Value > 1) a1 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s1), d * Vector256.Create(xs[blocks + b]), a1);
            if (N.Value > 2) a2 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s2), d * Vector256.Create(xs[2 * blocks + b]), a2);
            if (N.Value > 3) a3 = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(s3), d * Vector256.Create(xs[3 * blocks + b]), a3);
        }

        a0.Store(y);
        if (N.Value > 1) a1.Store(y + stride);
        if (N.Value > 2) a2.Store(y + 2 * stride);
        if (N.Value > 3) a3.Store(y + 3 * stride);
    }

    /// <summary>Four activations, broadcast to the eight lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Broadcast(sbyte* x) => Vector256.Create(*(int*)x).AsSByte();

    /// <summary>Low and high nibbles times activations 4k.. and 16 + 4k..: 16-bit pair sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Nibbles(Vector256<byte> low, Vector256<byte> high, sbyte* x) =>
        Avx2.MultiplyAddAdjacent(low, Broadcast(x)) + Avx2.MultiplyAddAdjacent(high, Broadcast(x + 16));

    /// <summary>The same products summed straight into 32-bit lanes by AVX-VNNI.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Nibbles(Vector256<int> sum, Vector256<byte> low, Vector256<byte> high, sbyte* x) =>
        AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(sum, low, Broadcast(x)), high, Broadcast(x + 16));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Signed(bool vnni, Vector256<int> sum, Vector256<byte> magnitude, Vector256<sbyte> signs, sbyte* x, Vector256<short> ones)
    {
        var signed = Avx2.Sign(Broadcast(x), signs);
        return vnni
            ? AvxVnni.MultiplyWideningAndAdd(sum, magnitude, signed)
            : sum + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(magnitude, signed), ones);
    }
}
