using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using Exo.Inference.Weights;

namespace Exo.Inference.Kernels;

/// <summary>
/// <see cref="InterleavedDot"/>'s kernels on Arm with the dot-product extension (sdot, every Apple M-series core). A
/// 128-bit half of a chunk holds four values of each of four rows, and sdot by element multiplies it by one quadruplet
/// of activations for all four rows at once: a group's eight row sums build up in two vectors of int lanes, with no
/// broadcasts and no widening. The integer block sums equal the x86 kernels' and are scaled and accumulated in the same
/// order, so both give the same bits.
/// </summary>
[SkipLocalsInit]
internal static unsafe class InterleavedDotArm
{
    private const int GroupRows = InterleavedRows.GroupRows;
    private const int BlockSize = QuantDot.BlockSize;

    /// <summary>See <see cref="InterleavedDot.Group{B, N}"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Group<B, N>(byte* group, int blocks, sbyte* xq, float* xs, int* offsets, float* y, int stride)
        where B : IQuantBlock where N : IRowCount
    {
        var chunkBytes = (B.BlockBytes - 2) * GroupRows;
        var scales = (short*)group;
        var values = group + (long)blocks * GroupRows * 2;
        nint columns = blocks * BlockSize, rowBlocks = blocks;
        Sums a0 = default, a1 = default, a2 = default, a3 = default;
        for (var b = 0; b < blocks; b++, values += chunkBytes, scales += GroupRows, xq += BlockSize, xs++, offsets++)
        {
            var x = new Activations<N>(xq, columns);
            IntSums s0 = default, s1 = default, s2 = default, s3 = default;
            if (B.Offset)
            {
                // Q4_0: chunk k holds bytes 4k..4k+3 of each row; low nibbles are values 4k.., high ones 16 + 4k..
                Nibbles<N>(values, 0, x, ref s0, ref s1, ref s2, ref s3);
                Nibbles<N>(values + 32, 1, x, ref s0, ref s1, ref s2, ref s3);
                Nibbles<N>(values + 64, 2, x, ref s0, ref s1, ref s2, ref s3);
                Nibbles<N>(values + 96, 3, x, ref s0, ref s1, ref s2, ref s3);
                s0 = s0.Minus(offsets[0]);
                if (N.Value > 1) s1 = s1.Minus(offsets[rowBlocks]);
                if (N.Value > 2) s2 = s2.Minus(offsets[2 * rowBlocks]);
                if (N.Value > 3) s3 = s3.Minus(offsets[3 * rowBlocks]);
            }
            else
            {
                // Q8_0: chunk k holds values 4k..4k+3 of each row, quadruplet k of the activations.
                Signed<N>(values, false, 0, x, ref s0, ref s1, ref s2, ref s3);
                Signed<N>(values + 32, false, 1, x, ref s0, ref s1, ref s2, ref s3);
                Signed<N>(values + 64, false, 2, x, ref s0, ref s1, ref s2, ref s3);
                Signed<N>(values + 96, false, 3, x, ref s0, ref s1, ref s2, ref s3);
                Signed<N>(values + 128, true, 0, x, ref s0, ref s1, ref s2, ref s3);
                Signed<N>(values + 160, true, 1, x, ref s0, ref s1, ref s2, ref s3);
                Signed<N>(values + 192, true, 2, x, ref s0, ref s1, ref s2, ref s3);
                Signed<N>(values + 224, true, 3, x, ref s0, ref s1, ref s2, ref s3);
            }

            var d = Halves(scales);
            a0 = a0.Add(s0, d, xs[0]);
            if (N.Value > 1) a1 = a1.Add(s1, d, xs[rowBlocks]);
            if (N.Value > 2) a2 = a2.Add(s2, d, xs[2 * rowBlocks]);
            if (N.Value > 3) a3 = a3.Add(s3, d, xs[3 * rowBlocks]);
        }

        a0.Store(y);
        if (N.Value > 1) a1.Store(y + stride);
        if (N.Value > 2) a2.Store(y + 2 * stride);
        if (N.Value > 3) a3.Store(y + 3 * stride);
    }

    /// <summary>See <see cref="InterleavedDot.GroupQ4K{N}"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void GroupQ4K<N>(byte* group, int superBlocks, sbyte* xq, float* xs, float* sums, float* y, int stride)
        where N : IRowCount
    {
        nint columns = superBlocks * 256, rowBlocks = superBlocks * 8;
        Sums a0 = default, a1 = default, a2 = default, a3 = default;
        Sums c0 = default, c1 = default, c2 = default, c3 = default;
        for (var s = 0; s < superBlocks; s++)
        {
            var record = group + (long)s * InterleavedRows.Q4KSuperBlockBytes;
            var d = Halves((short*)record);
            var dmin = Halves((short*)(record + 16));
            for (var j = 0; j < 8; j++, xq += BlockSize, xs++, sums++)
            {
                var meta = record + 32 + 16 * j;
                var values = record + 160 + 128 * j;
                var x = new Activations<N>(xq, columns);
                IntSums s0 = default, s1 = default, s2 = default, s3 = default;
                Nibbles<N>(values, 0, x, ref s0, ref s1, ref s2, ref s3);
                Nibbles<N>(values + 32, 1, x, ref s0, ref s1, ref s2, ref s3);
                Nibbles<N>(values + 64, 2, x, ref s0, ref s1, ref s2, ref s3);
                Nibbles<N>(values + 96, 3, x, ref s0, ref s1, ref s2, ref s3);
                var scale = d.Times(Bytes(meta));
                var min = dmin.Times(Bytes(meta + 8));
                a0 = a0.Add(s0, scale, xs[0]);
                c0 = c0.Add(min, sums[0]);
                if (N.Value > 1)
                {
                    a1 = a1.Add(s1, scale, xs[rowBlocks]);
                    c1 = c1.Add(min, sums[rowBlocks]);
                }

                if (N.Value > 2)
                {
                    a2 = a2.Add(s2, scale, xs[2 * rowBlocks]);
                    c2 = c2.Add(min, sums[2 * rowBlocks]);
                }

                if (N.Value > 3)
                {
                    a3 = a3.Add(s3, scale, xs[3 * rowBlocks]);
                    c3 = c3.Add(min, sums[3 * rowBlocks]);
                }
            }
        }

        a0.Minus(c0).Store(y);
        if (N.Value > 1) a1.Minus(c1).Store(y + stride);
        if (N.Value > 2) a2.Minus(c2).Store(y + 2 * stride);
        if (N.Value > 3) a3.Minus(c3).Store(y + 3 * stride);
    }

    /// <summary>One Q4_0 chunk: low nibbles against quadruplet k of the block's first 16 activations, high ones against the last 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Nibbles<N>(byte* chunk, [ConstantExpected(Max = 3)] byte k, in Activations<N> x,
        ref IntSums s0, ref IntSums s1, ref IntSums s2, ref IntSums s3)
        where N : IRowCount
    {
        var mask = Vector128.Create((byte)0x0F);
        Vector128<byte> first = Vector128.Load(chunk), second = Vector128.Load(chunk + 16);
        var low = new Chunk((first & mask).AsSByte(), (second & mask).AsSByte());
        var high = new Chunk((first >>> 4).AsSByte(), (second >>> 4).AsSByte());
        s0 = s0.Dot(low, x.Low0, k).Dot(high, x.High0, k);
        if (N.Value > 1) s1 = s1.Dot(low, x.Low1, k).Dot(high, x.High1, k);
        if (N.Value > 2) s2 = s2.Dot(low, x.Low2, k).Dot(high, x.High2, k);
        if (N.Value > 3) s3 = s3.Dot(low, x.Low3, k).Dot(high, x.High3, k);
    }

    /// <summary>One Q8_0 chunk against quadruplet k of the block's first (or, when <paramref name="second"/>, last) 16 activations.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Signed<N>(byte* chunk, bool second, [ConstantExpected(Max = 3)] byte k, in Activations<N> x,
        ref IntSums s0, ref IntSums s1, ref IntSums s2, ref IntSums s3)
        where N : IRowCount
    {
        var w = new Chunk(Vector128.Load((sbyte*)chunk), Vector128.Load((sbyte*)chunk + 16));
        s0 = s0.Dot(w, second ? x.High0 : x.Low0, k);
        if (N.Value > 1) s1 = s1.Dot(w, second ? x.High1 : x.Low1, k);
        if (N.Value > 2) s2 = s2.Dot(w, second ? x.High2 : x.Low2, k);
        if (N.Value > 3) s3 = s3.Dot(w, second ? x.High3 : x.Low3, k);
    }

    /// <summary>Eight f16 values (scales of the group's rows) as floats, rows 0..3 and 4..7.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Sums Halves(short* halves)
    {
        var h = Vector128.Load(halves);
        return new Sums(HalfBits.FiniteToSingle(Vector128.WidenLower(h)), HalfBits.FiniteToSingle(Vector128.WidenUpper(h)));
    }

    /// <summary>Eight unsigned bytes (a Q4_K sub-block's scales or mins of the group's rows) as floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Sums Bytes(byte* bytes)
    {
        var shorts = Vector128.WidenLower(Vector128.CreateScalarUnsafe(*(ulong*)bytes).AsByte());
        return new Sums(Vector128.ConvertToSingle(Vector128.WidenLower(shorts)), Vector128.ConvertToSingle(Vector128.WidenUpper(shorts)));
    }

    /// <summary>A chunk's values for rows 0..3 and rows 4..7, four per row.</summary>
    private readonly record struct Chunk(Vector128<sbyte> Rows0To3, Vector128<sbyte> Rows4To7);

    /// <summary>Integer sums of the group's eight rows against one activation row.</summary>
    private readonly record struct IntSums(Vector128<int> Rows0To3, Vector128<int> Rows4To7)
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public IntSums Dot(Chunk w, Vector128<sbyte> x, [ConstantExpected(Max = 3)] byte k) =>
            new(Dp.DotProductBySelectedQuadruplet(Rows0To3, w.Rows0To3, x, k), Dp.DotProductBySelectedQuadruplet(Rows4To7, w.Rows4To7, x, k));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public IntSums Minus(int offset) => new(Rows0To3 - Vector128.Create(offset), Rows4To7 - Vector128.Create(offset));
    }

    /// <summary>Float values of the group's eight rows.</summary>
    private readonly record struct Sums(Vector128<float> Rows0To3, Vector128<float> Rows4To7)
    {
        /// <summary>this + s · (scale · x), as the x86 kernels round it.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Sums Add(IntSums s, Sums scale, float x) => new(
            Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(s.Rows0To3), scale.Rows0To3 * Vector128.Create(x), Rows0To3),
            Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(s.Rows4To7), scale.Rows4To7 * Vector128.Create(x), Rows4To7));

        /// <summary>this + value · x.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Sums Add(Sums value, float x) => new(
            Vector128.FusedMultiplyAdd(value.Rows0To3, Vector128.Create(x), Rows0To3),
            Vector128.FusedMultiplyAdd(value.Rows4To7, Vector128.Create(x), Rows4To7));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Sums Times(Sums other) => new(Rows0To3 * other.Rows0To3, Rows4To7 * other.Rows4To7);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Sums Minus(Sums other) => new(Rows0To3 - other.Rows0To3, Rows4To7 - other.Rows4To7);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(float* y)
        {
            Rows0To3.Store(y);
            Rows4To7.Store(y + 4);
        }
    }

    /// <summary>The block's 32 activations of each of the N activation rows, as two 16-value halves.</summary>
    private readonly struct Activations<N> where N : IRowCount
    {
        public readonly Vector128<sbyte> Low0, High0, Low1, High1, Low2, High2, Low3, High3;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Activations(sbyte* xq, nint columns)
        {
            (Low0, High0) = (Vector128.Load(xq), Vector128.Load(xq + 16));
            if (N.Value > 1) (Low1, High1) = (Vector128.Load(xq + columns), Vector128.Load(xq + columns + 16));
            if (N.Value > 2) (Low2, High2) = (Vector128.Load(xq + 2 * columns), Vector128.Load(xq + 2 * columns + 16));
            if (N.Value > 3) (Low3, High3) = (Vector128.Load(xq + 3 * columns), Vector128.Load(xq + 3 * columns + 16));
        }
    }
}
