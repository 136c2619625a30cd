using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Exo.Inference.Kernels;

/// <summary>How a 32-value GGML block type yields its scale and its 32 signed integer values.</summary>
internal unsafe interface IQuantBlock
{
    static abstract int BlockBytes { get; }

    /// <summary>Whether <see cref="Raw"/> gives values offset by +8 (unsigned nibbles) rather than signed bytes.</summary>
    static abstract bool Offset { get; }

    static abstract float Scale(byte* block);

    /// <summary>Signed values 0..15 in the first half, 16..31 in the second.</summary>
    static abstract void Values(byte* block, out Vector128<sbyte> low, out Vector128<sbyte> high);

    /// <summary>The 32 values as stored: signed bytes, or with <see cref="Offset"/> unsigned values 0..15 to be shifted by −8.</summary>
    static abstract Vector256<byte> Raw(byte* block);
}

/// <summary>Q8_0: f16 scale, 32 × int8.</summary>
internal readonly unsafe struct Q8Block : IQuantBlock
{
    public static int BlockBytes => 34;

    public static bool Offset => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* block) => QuantDot.HalfToSingle(*(ushort*)block);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Values(byte* block, out Vector128<sbyte> low, out Vector128<sbyte> high)
    {
        low = Vector128.Load((sbyte*)block + 2);
        high = Vector128.Load((sbyte*)block + 18);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Raw(byte* block) => Vector256.Load(block + 2);
}

/// <summary>Q4_0: f16 scale, 16 bytes whose low nibbles are values 0..15 and high nibbles 16..31, offset by 8.</summary>
internal readonly unsafe struct Q4Block : IQuantBlock
{
    public static int BlockBytes => 18;

    public static bool Offset => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* block) => QuantDot.HalfToSingle(*(ushort*)block);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Values(byte* block, out Vector128<sbyte> low, out Vector128<sbyte> high)
    {
        var packed = Vector128.Load(block + 2);
        var mask = Vector128.Create((byte)0x0F);
        var eight = Vector128.Create((sbyte)8);
        low = (packed & mask).AsSByte() - eight;
        high = ((packed >>> 4) & mask).AsSByte() - eight;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Raw(byte* block)
    {
        // The 16 bytes in both halves, the upper half shifted by a nibble: three instructions for 32 values.
        var packed = Avx2.BroadcastVector128ToVector256(block + 2).AsUInt32();
        return Avx2.ShiftRightLogicalVariable(packed, Vector256.Create(0u, 0, 0, 0, 4, 4, 4, 4)).AsByte() & Vector256.Create((byte)0x0F);
    }
}

/// <summary>Which x86 instructions multiply bytes: a type argument, fixed when the JIT compiles, so no step tests it.</summary>
internal interface IBytes
{
    /// <summary>AVX-VNNI's vpdpbusd, or else AVX2's vpmaddubsw and vpmaddwd.</summary>
    static abstract bool Vnni { get; }
}

internal readonly struct Avx2Bytes : IBytes
{
    public static bool Vnni => false;
}

internal readonly struct VnniBytes : IBytes
{
    public static bool Vnni => AvxVnni.IsSupported;
}

/// <summary>
/// Integer dot products of quantized weight rows with activations quantized to int8 blocks of 32 (one f32 scale per
/// block). On x86 each block is one 256-bit multiply-add of bytes: AVX-VNNI's vpdpbusd where the CPU has it (the widest
/// integer dot product .NET exposes here), else AVX2's vpmaddubsw and vpmaddwd; on Arm 128-bit sdot where the CPU has
/// it, elsewhere 128-bit widening multiplies.
/// Block sums are exact integers, scaled and accumulated in f32 in block order, so a row's result never depends on the batch.
/// </summary>
[SkipLocalsInit]
internal static unsafe class QuantDot
{
    public const int BlockSize = 32;

    // Block scales converted per step of the dot product (stack floats).
    private const int ScaleChunk = 64;

    // How far ahead of the block being multiplied its row is prefetched: the hardware prefetcher alone leaves single-thread
    // decoding short of the memory bandwidth (Q8_0 1 thread: 11.6 tok/s without, 13.7 at 2 KiB, 15.9 at 4 KiB).
    public const int PrefetchBytes = 4096;

    /// <summary>Which integer instructions run; tests force each one that the machine supports.</summary>
    public enum Path
    {
        Portable,
        Avx2,
        AvxVnni,

        /// <summary>Arm's sdot (the dot-product extension); row-layout blocks take the portable code with it.</summary>
        ArmDot,
    }

    public static Path Best =>
        AvxVnni.IsSupported ? Path.AvxVnni : Avx2.IsSupported ? Path.Avx2 : Dp.IsSupported ? Path.ArmDot : Path.Portable;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfToSingle(ushort h) => HalfBits.ToSingle(Vector128.CreateScalarUnsafe((uint)h)).ToScalar();

    /// <summary>
    /// Quantizes each of the n rows of x[n, columns] to int8 blocks: q = round(x / d) with d = max |x| / 127 per block;
    /// sums gets d · Σ q per block, what offset weight values (Q4_0's +8) need subtracted, and offsets (when given) the
    /// integer 8 · Σ q that the interleaved kernels subtract.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void QuantizeRows(float* x, int n, int columns, sbyte* quants, float* scales, float* sums, int* offsets = null)
    {
        var blocks = (long)n * columns / BlockSize;
        for (long b = 0; b < blocks; b++)
        {
            var source = x + b * BlockSize;
            var max = Vector128<float>.Zero;
            for (var i = 0; i < BlockSize; i += 4) max = Vector128.Max(max, Vector128.Abs(Vector128.Load(source + i)));
            var amax = MathF.Max(MathF.Max(max[0], max[1]), MathF.Max(max[2], max[3]));
            var d = amax / 127f;
            scales[b] = d;
            var inverse = Vector128.Create(d == 0 ? 0f : 1f / d);
            var target = quants + b * BlockSize;
            var total = Vector128<int>.Zero;
            for (var i = 0; i < BlockSize; i += 8)
            {
                var lo = Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(source + i) * inverse));
                var hi = Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(source + i + 4) * inverse));
                total += lo + hi;
                var shorts = Vector128.Narrow(lo, hi);
                *(long*)(target + i) = Vector128.Narrow(shorts, shorts).AsInt64().ToScalar();
            }

            var sum = Vector128.Sum(total);
            sums[b] = d * sum;
            if (offsets != null) offsets[b] = 8 * sum;
        }
    }

    /// <summary>
    /// out[j · stride] = Σ_blocks d_w · d_x · (w · x_j) for the N activation rows x_j (quants, scales and sums of one row
    /// follow the previous row's); the weight row is read once for all of them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotRows<B, N>(Path path, byte* w, int blocks, sbyte* xq, float* xs, float* sums, float* output, int stride)
        where B : IQuantBlock where N : IRowCount
    {
        if (path is Path.Portable or Path.ArmDot)
        {
            DotRowsPortable<B, N>(path == Path.ArmDot && Dp.IsSupported, w, blocks, xq, xs, output, stride);
            return;
        }

        if (path == Path.AvxVnni && AvxVnni.IsSupported) DotRowsX86<B, N, VnniBytes>(w, blocks, xq, xs, sums, output, stride);
        else DotRowsX86<B, N, Avx2Bytes>(w, blocks, xq, xs, sums, output, stride);
    }

    /// <summary><see cref="DotRows{B, N}"/> on x86, with the byte multiply-add of <typeparamref name="P"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotRowsX86<B, N, P>(byte* w, int blocks, sbyte* xq, float* xs, float* sums, float* output, int stride)
        where B : IQuantBlock where N : IRowCount where P : IBytes
    {
        // Offsets from row 0 to rows 1..3 of the activations, their scales and sums; pointers advance one block a step.
        nint columns = blocks * BlockSize, row = blocks;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        float c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        var end = w + (long)blocks * B.BlockBytes;
        // Weight scales, then for each activation row the products d_w · d_x that scale its block sums.
        var scales = stackalloc float[(1 + N.Value) * ScaleChunk];
        var ones = Vector256.Create((short)1);
        for (byte* block = w; block < end;)
        {
            // The weight scales of the next blocks, converted eight at a time; this also pulls those blocks into L1.
            var chunk = (int)(Math.Min(ScaleChunk * B.BlockBytes, end - block) / B.BlockBytes);
            ConvertScales(block, chunk, B.BlockBytes, scales);
            for (var j = 0; j < N.Value; j++) Multiply(scales, xs + j * row, chunk, scales + (j + 1) * ScaleChunk);
            if (B.Offset)
            {
                c0 += Dot(scales, sums, chunk);
                if (N.Value > 1) c1 += Dot(scales, sums + row, chunk);
                if (N.Value > 2) c2 += Dot(scales, sums + 2 * row, chunk);
                if (N.Value > 3) c3 += Dot(scales, sums + 3 * row, chunk);
            }

            var chunkEnd = block + chunk * B.BlockBytes;
            for (nint i = 0; block < chunkEnd; block += B.BlockBytes, xq += BlockSize, i++)
            {
                Sse.Prefetch0(block + PrefetchBytes);
                var raw = B.Raw(block);
                // vpmaddubsw and vpdpbusd multiply unsigned by signed bytes. Offset values are unsigned already (their −8 is
                // applied once per block through the activations' sums); signed ones move their sign onto the activation.
                var signs = raw.AsSByte();
                var magnitude = B.Offset ? raw : Avx2.Abs(signs);
                a0 = Accumulate<B, P>(magnitude, signs, xq, scales[ScaleChunk + i], ones, a0);
                if (N.Value > 1)
                {
                    a1 = Accumulate<B, P>(magnitude, signs, xq + columns, scales[2 * ScaleChunk + i], ones, a1);
                }

                if (N.Value > 2)
                {
                    a2 = Accumulate<B, P>(magnitude, signs, xq + 2 * columns, scales[3 * ScaleChunk + i], ones, a2);
                }

                if (N.Value > 3)
                {
                    a3 = Accumulate<B, P>(magnitude, signs, xq + 3 * columns, scales[4 * ScaleChunk + i], ones, a3);
                }
            }

            xs += chunk;
            sums += chunk;
        }

        output[0] = Vector256.Sum(a0) - 8 * c0;
        if (N.Value > 1) output[stride] = Vector256.Sum(a1) - 8 * c1;
        if (N.Value > 2) output[2 * stride] = Vector256.Sum(a2) - 8 * c2;
        if (N.Value > 3) output[3 * stride] = Vector256.Sum(a3) - 8 * c3;
    }

    /// <summary>Converts the f16 scales that open <paramref name="count"/> blocks <paramref name="stride"/> bytes apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ConvertScales(byte* block, int count, int stride, float* scales)
    {
        var i = 0;
        for (; i + 8 <= count; i += 8, block += 8 * stride)
        {
            var halves = Vector256.Create((uint)*(ushort*)block, *(ushort*)(block + stride), *(ushort*)(block + 2 * stride),
                *(ushort*)(block + 3 * stride), *(ushort*)(block + 4 * stride), *(ushort*)(block + 5 * stride),
                *(ushort*)(block + 6 * stride), *(ushort*)(block + 7 * stride));
            HalfBits.ToSingle(halves).Store(scales + i);
        }

        for (; i < count; i++, block += stride) scales[i] = HalfToSingle(*(ushort*)block);
    }

    /// <summary>Σ a[i] · b[i] over count values: eight lanes, then the tail in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(float* a, float* b, int count)
    {
        var acc = Vector256<float>.Zero;
        var i = 0;
        for (; i + 8 <= count; i += 8) acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc);
        var sum = Vector256.Sum(acc);
        for (; i < count; i++) sum = MathF.FusedMultiplyAdd(a[i], b[i], sum);
        return sum;
    }

    /// <summary>product[i] = a[i] · b[i] for count values, the same single roundings as a scalar multiply.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Multiply(float* a, float* b, int count, float* product)
    {
        var i = 0;
        for (; i + 8 <= count; i += 8) (Vector256.Load(a + i) * Vector256.Load(b + i)).Store(product + i);
        for (; i < count; i++) product[i] = a[i] * b[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Accumulate<B, P>(Vector256<byte> magnitude, Vector256<sbyte> signs, sbyte* x, float scale,
        Vector256<short> ones, Vector256<float> acc)
        where B : IQuantBlock where P : IBytes
    {
        var signed = B.Offset ? Vector256.Load(x) : Avx2.Sign(Vector256.Load(x), signs);
        var sums = Products<P>(Vector256<int>.Zero, magnitude, signed, ones);
        return Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(sums), Vector256.Create(scale), acc);
    }

    /// <summary>s + the sums of each lane's four products of unsigned and signed bytes (none of the 16-bit pair sums can saturate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Products<P>(Vector256<int> s, Vector256<byte> unsigned, Vector256<sbyte> signed, Vector256<short> ones)
        where P : IBytes =>
        P.Vnni ? AvxVnni.MultiplyWideningAndAdd(s, unsigned, signed) : s + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(unsigned, signed), ones);

    private static void DotRowsPortable<B, N>(bool dot, byte* w, int blocks, sbyte* xq, float* xs, float* output, int stride)
        where B : IQuantBlock where N : IRowCount
    {
        var columns = blocks * BlockSize;
        Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (var b = 0; b < blocks; b++)
        {
            var block = w + (long)b * B.BlockBytes;
            B.Values(block, out var low, out var high);
            var d = B.Scale(block);
            a0 = AccumulatePortable(dot, low, high, xq + b * BlockSize, d * xs[b], a0);
            if (N.Value > 1) a1 = AccumulatePortable(dot, low, high, xq + columns + b * BlockSize, d * xs[blocks + b], a1);
            if (N.Value > 2) a2 = AccumulatePortable(dot, low, high, xq + 2 * columns + b * BlockSize, d * xs[2 * blocks + b], a2);
            if (N.Value > 3) a3 = AccumulatePortable(dot, low, high, xq + 3 * columns + b * BlockSize, d * xs[3 * blocks + b], a3);
        }

        output[0] = Vector128.Sum(a0);
        if (N.Value > 1) output[stride] = Vector128.Sum(a1);
        if (N.Value > 2) output[2 * stride] = Vector128.Sum(a2);
        if (N.Value > 3) output[3 * stride] = Vector128.Sum(a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> AccumulatePortable(bool dot, Vector128<sbyte> low, Vector128<sbyte> high, sbyte* x, float scale, Vector128<float> acc)
    {
        var sums = dot
            ? Dp.DotProduct(Dp.DotProduct(Vector128<int>.Zero, low, Vector128.Load(x)), high, Vector128.Load(x + 16))
            : Products(low, Vector128.Load(x)) + Products(high, Vector128.Load(x + 16));
        return Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(sums), Vector128.Create(scale), acc);
    }

    /// <summary>16 byte products summed into 4 int lanes (each |product| ≤ 128 · 127, so shorts cannot overflow).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Products(Vector128<sbyte> w, Vector128<sbyte> x)
    {
        var (wl, wh) = Vector128.Widen(w);
        var (xl, xh) = Vector128.Widen(x);
        var (p0, p1) = Vector128.Widen(wl * xl);
        var (p2, p3) = Vector128.Widen(wh * xh);
        return p0 + p1 + p2 + p3;
    }
}
