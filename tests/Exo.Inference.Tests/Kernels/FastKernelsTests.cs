using Exo.Inference.Kernels;
using System.Runtime.InteropServices;
using Exo.Inference.Verification;
using Exo.Inference.Weights;

namespace Exo.Inference.Tests.Kernels;

/// <summary>Fast kernels of every vector width, on one thread and on two, built once for the whole class.</summary>
public sealed class KernelVariants : IDisposable
{
    public KernelVariants()
    {
        // 128-bit vectors run with the portable integer path, 256-bit ones with AVX2's where the machine has it (so that
        // a machine with AVX-VNNI checks both x86 paths), 512-bit ones with the best this machine has.
        foreach (var bits in new[] { 128, 256, 512 })
        {
            var path = bits switch
            {
                128 => QuantDot.Path.Portable,
                256 when System.Runtime.Intrinsics.X86.Avx2.IsSupported => QuantDot.Path.Avx2,
                _ => QuantDot.Best,
            };
            foreach (var threads in new[] { 1, 2 }) All.Add(new FastKernels(threads, bits, path));
        }
    }

    public List<FastKernels> All { get; } = [];

    /// <summary>
    /// Each kernel gives every output row the same bits whether its activation row comes alone or in a batch of n, and
    /// kernels of one vector width agree across thread counts: prefill and decode paths reproduce each other.
    /// </summary>
    public void AssertRowsDoNotDependOnTheBatch(in Tensor w, float[] x, int n)
    {
        int rows = w.Rows, columns = w.Columns;
        foreach (var bits in new[] { 128, 256, 512 })
        {
            var group = All.Where(k => k.VectorBits == bits).ToList();
            var batched = new float[n * rows];
            group[0].MatMul(x, n, w, [], batched);
            foreach (var k in group)
            {
                for (var t = 0; t < n; t++)
                {
                    var single = new float[rows];
                    k.MatMul(x.AsSpan(t * columns, columns), 1, w, [], single);
                    Assert.Equal(batched.AsSpan(t * rows, rows).ToArray(), single);
                }
            }
        }
    }

    public void Dispose()
    {
        foreach (var k in All) k.Dispose();
    }
}

public sealed class FastKernelsTests(KernelVariants variants) : IClassFixture<KernelVariants>
{
    private const double Tolerance = 1e-5;
    private static readonly ReferenceKernels Reference = ReferenceKernels.Instance;

    private static float[] RandomArray(Random random, int length, float scale = 1f) =>
        Enumerable.Range(0, length).Select(_ => (random.NextSingle() * 2 - 1) * scale).ToArray();

    /// <summary>A random [-1, 1) matrix stored as <paramref name="type"/>.</summary>
    private static Tensor RandomTensor(NativeTensors store, DType type, int rows, int columns, Random random) =>
        store.Convert(store.Add("w", DType.F32, [rows, columns], MemoryMarshal.AsBytes(RandomArray(random, rows * columns).AsSpan())), type);

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        var error = ModelVerifier.RelativeError(actual, expected);
        Assert.True(error <= Tolerance, $"{what}: relative error {error}");
    }

    [Theory]
    [InlineData(DType.F32, false)]
    [InlineData(DType.F16, false)]
    [InlineData(DType.F16, true)]
    [InlineData(DType.BF16, false)]
    public void MatMulMatchesTheReferenceOnAwkwardShapes(DType type, bool scanned)
    {
        var random = new Random(7);
        foreach (var (rows, columns) in new[] { (1, 33), (3, 1000), (17, 7), (17, 33), (5, 64), (9, 200) })
        {
            using var store = new NativeTensors();
            var w = RandomTensor(store, type, rows, columns, random);
            if (scanned) w = w.WithFiniteScan();
            Assert.Equal(scanned && type == DType.F16, w.Finite);
            var bias = RandomArray(random, rows);
            for (var n = 1; n <= 9; n++)
            {
                var x = RandomArray(random, n * columns);
                var expected = new float[n * rows];
                Reference.MatMul(x, n, w, n % 2 == 0 ? bias : [], expected);
                foreach (var k in variants.All)
                {
                    var actual = new float[n * rows];
                    k.MatMul(x, n, w, n % 2 == 0 ? bias : [], actual);
                    AssertClose(expected, actual, $"{type} [{rows}x{columns}] n={n} {k.VectorBits} bits {k.Threads} threads");
                }
            }
        }
    }

    [Fact]
    public void DecodeBatchesGiveEachSequenceItsSingleRowBits()
    {
        // Two to four rows stream each weight row once for all of them (decode batches), one row takes the four-row
        // groups: both give a row the same bits, over vector steps and a scalar tail (1100 columns) and a partial group.
        var random = new Random(13);
        using var store = new NativeTensors();
        foreach (var type in new[] { DType.F16, DType.BF16, DType.F32 })
        {
            var w = RandomTensor(store, type, 37, 1100, random);
            foreach (var tensor in type == DType.F16 ? [w, w.WithFiniteScan()] : new[] { w })
            {
                for (var n = 2; n <= 4; n++) variants.AssertRowsDoNotDependOnTheBatch(tensor, RandomArray(random, n * 1100), n);
            }
        }
    }

    [Fact]
    public void EachOutputRowIsIndependentOfTheBatchAndThreads()
    {
        // Prefill (blocked) and decode (streamed) paths and every thread count give the same bits for a row.
        var random = new Random(11);
        using var store = new NativeTensors();
        var w = RandomTensor(store, DType.F16, 300, 257, random);
        var x = RandomArray(random, 13 * 257);
        variants.AssertRowsDoNotDependOnTheBatch(w, x, 13);

        // The finite conversion and the four-row decode groups (150 rows a thread: groups and a remainder) change nothing.
        var finite = w.WithFiniteScan();
        Assert.True(finite.Finite);
        variants.AssertRowsDoNotDependOnTheBatch(finite, x, 13);
        foreach (var k in variants.All)
        {
            float[] exact = new float[13 * 300], fast = new float[13 * 300];
            k.MatMul(x, 13, w, [], exact);
            k.MatMul(x, 13, finite, [], fast);
            Assert.Equal(exact, fast);
        }
    }

    [Fact]
    public void VectorExpIsWithinTwoUnitsInTheLastPlace()
    {
        // Every 997th float from −87 to 88 (about 1.8 million values), at each vector width.
        var worst = 0.0;
        var values = new List<float>();
        for (var x = -87f; x <= 88f; x = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(x) + (x < 0 ? -997 : 997)))
        {
            values.Add(x);
            if (x < 0 && x > -1e-30f) x = 1e-30f;
        }

        while (values.Count % 16 != 0) values.Add(0f);
        var input = values.ToArray();
        float[] o128 = Exp<Simd128, System.Runtime.Intrinsics.Vector128<float>>(input),
            o256 = Exp<Simd256, System.Runtime.Intrinsics.Vector256<float>>(input),
            o512 = Exp<Simd512, System.Runtime.Intrinsics.Vector512<float>>(input);
        for (var i = 0; i < input.Length; i++)
        {
            var exact = Math.Exp(input[i]);
            worst = Math.Max(worst, Math.Abs(o256[i] - exact) / exact);
            Assert.Equal(o256[i], o128[i]);
            Assert.Equal(o256[i], o512[i]);
        }

        Assert.True(values.Count > 1_000_000, $"{values.Count} values");
        Assert.True(worst < 2.5e-7, $"largest relative error {worst}");
    }

    private static unsafe float[] Exp<S, V>(float[] input) where S : ISimd<V> where V : struct
    {
        var output = new float[input.Length];
        fixed (float* ip = input)
        fixed (float* op = output)
        {
            for (var i = 0; i < input.Length; i += S.Count) S.Store(SimdMath.Exp<S, V>(S.Load(ip + i)), op + i);
        }

        return output;
    }

    [Fact]
    public void ElementwiseKernelsMatchTheReference()
    {
        var random = new Random(3);
        foreach (var d in new[] { 1, 7, 33, 1000 })
        {
            const int n = 3;
            var x = RandomArray(random, n * d, 4f);
            var weight = RandomArray(random, d);
            var up = RandomArray(random, n * d, 3f);
            var expectedNorm = new float[n * d];
            Reference.RmsNorm(x, n, weight, 1e-5f, expectedNorm);
            var expectedSilu = (float[])x.Clone();
            Reference.SiluMul(expectedSilu, up);
            var expectedSum = (float[])x.Clone();
            Reference.Add(expectedSum, up);
            foreach (var k in variants.All)
            {
                var norm = new float[n * d];
                k.RmsNorm(x, n, weight, 1e-5f, norm);
                AssertClose(expectedNorm, norm, $"rmsnorm d={d} {k.VectorBits} bits");
                var silu = (float[])x.Clone();
                k.SiluMul(silu, up);
                AssertClose(expectedSilu, silu, $"silu d={d} {k.VectorBits} bits");
                var sum = (float[])x.Clone();
                k.Add(sum, up);
                Assert.Equal(expectedSum, sum);
            }
        }
    }

    [Fact]
    public void RopeAndEmbedMatchTheReference()
    {
        var random = new Random(5);
        foreach (var headDim in new[] { 2, 16, 24, 64, 66 })
        {
            const int n = 3, heads = 5;
            var half = headDim / 2;
            var x = RandomArray(random, n * heads * headDim);
            var angles = RandomArray(random, n * half, 3f);
            var cos = angles.Select(MathF.Cos).ToArray();
            var sin = angles.Select(MathF.Sin).ToArray();
            var expected = (float[])x.Clone();
            Reference.Rope(expected, n, heads, headDim, cos, sin);
            foreach (var k in variants.All)
            {
                var actual = (float[])x.Clone();
                k.Rope(actual, n, heads, headDim, cos, sin);
                AssertClose(expected, actual, $"rope headDim={headDim} {k.VectorBits} bits");
            }
        }

        foreach (var type in new[] { DType.F32, DType.F16, DType.BF16 })
        {
            using var store = new NativeTensors();
            var table = RandomTensor(store, type, 50, 37, random);
            int[] tokens = [0, 49, 17, 17];
            var expected = new float[tokens.Length * 37];
            Reference.Embed(table, tokens, expected);
            foreach (var k in variants.All)
            {
                var actual = new float[tokens.Length * 37];
                k.Embed(table, tokens, actual);
                Assert.Equal(expected, actual);
            }
        }
    }

    [Theory]
    [InlineData(1, 0, 4, 4, 16, 0)]
    [InlineData(5, 0, 8, 2, 24, 0)]
    [InlineData(1, 37, 6, 3, 64, 0)]
    [InlineData(7, 20, 4, 1, 33, 9)]
    [InlineData(3, 10, 14, 2, 40, 0)]
    [InlineData(2, 5, 10, 2, 8, 4)]
    // Enough work for the two-thread kernels to split it, every query head on one key/value head.
    [InlineData(2, 600, 9, 1, 64, 0)]
    public void AttentionMatchesTheReference(int count, int first, int heads, int kvHeads, int headDim, int window)
    {
        var random = new Random(count * 31 + first);
        var positions = first + count;
        var q = RandomArray(random, count * heads * headDim, 2f);
        var keys = RandomArray(random, positions * kvHeads * headDim, 2f);
        var values = RandomArray(random, positions * kvHeads * headDim);
        var expected = new float[count * heads * headDim];
        Reference.Attention(q, count, first, keys, values, heads, kvHeads, headDim, window, new float[positions], expected);
        foreach (var k in variants.All)
        {
            var actual = new float[expected.Length];
            k.Attention(q, count, first, keys, values, heads, kvHeads, headDim, window, new float[positions], actual);
            AssertClose(expected, actual, $"attention {k.VectorBits} bits {k.Threads} threads");
        }
    }

    [Fact]
    public void FiniteHalfConversionIsExactForEveryFiniteBitPattern()
    {
        // The conversion without special-value handling, taken by tensors scanned finite: every finite half, both signs.
        var halves = Enumerable.Range(0, 65536).Select(i => (ushort)i).Where(h => (h & 0x7C00) != 0x7C00).ToArray();
        Assert.Equal(63488, halves.Length);
        using var store = new NativeTensors();
        var table = store.Add("halves", DType.F16, [halves.Length / 64, 64], MemoryMarshal.AsBytes(halves.AsSpan())).WithFiniteScan();
        Assert.True(table.Finite);
        var tokens = Enumerable.Range(0, table.Rows).ToArray();
        foreach (var k in variants.All)
        {
            var actual = new float[halves.Length];
            k.Embed(table, tokens, actual);
            for (var i = 0; i < halves.Length; i++)
            {
                var expected = (float)BitConverter.UInt16BitsToHalf(halves[i]);
                Assert.True(BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual[i]), $"half {halves[i]:x4} at {k.VectorBits} bits");
            }
        }
    }

    [Fact]
    public void HalfConversionIsExactForEveryBitPattern()
    {
        // Subnormals, infinities and NaN included: the vector conversion is bit manipulation that must equal the scalar one.
        var bytes = new byte[65536 * 2];
        for (var i = 0; i < 65536; i++) BitConverter.TryWriteBytes(bytes.AsSpan(i * 2), (ushort)i);
        using var store = new NativeTensors();
        var table = store.Add("halves", DType.F16, [1024, 64], bytes);
        var tokens = Enumerable.Range(0, 1024).ToArray();
        var expected = new float[65536];
        Reference.Embed(table, tokens, expected);
        foreach (var k in variants.All)
        {
            var actual = new float[65536];
            k.Embed(table, tokens, actual);
            for (var i = 0; i < actual.Length; i++)
                Assert.True(BitConverter.SingleToUInt32Bits(expected[i]) == BitConverter.SingleToUInt32Bits(actual[i]) || (float.IsNaN(expected[i]) && float.IsNaN(actual[i])), $"half {i:x4}");
        }
    }
}
