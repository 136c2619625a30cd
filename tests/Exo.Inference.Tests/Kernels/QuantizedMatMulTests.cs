using System.Runtime.InteropServices;
using Exo.Inference.Kernels;
using Exo.Inference.Verification;
using Exo.Inference.Weights;

namespace Exo.Inference.Tests.Kernels;

public sealed unsafe class QuantizedMatMulTests(KernelVariants variants) : IClassFixture<KernelVariants>
{
    private static float[] RandomArray(Random random, int length) =>
        Enumerable.Range(0, length).Select(_ => random.NextSingle() * 2 - 1).ToArray();

    /// <summary>The activations as the kernels see them: quantized to int8 blocks and back.</summary>
    private static float[] AsQuantized(float[] x, int n, int columns)
    {
        var quants = new sbyte[x.Length];
        var scales = new float[x.Length / QuantDot.BlockSize];
        var sums = new float[scales.Length];
        fixed (float* xp = x)
        fixed (sbyte* qp = quants)
        fixed (float* sp = scales)
        fixed (float* up = sums)
        {
            QuantDot.QuantizeRows(xp, n, columns, qp, sp, up);
        }

        for (var b = 0; b < sums.Length; b++)
            Assert.Equal(sums[b], scales[b] * quants.Skip(b * QuantDot.BlockSize).Take(QuantDot.BlockSize).Sum(q => q), 3);

        return quants.Select((q, i) => q * scales[i / QuantDot.BlockSize]).ToArray();
    }

    [Theory]
    [InlineData(DType.Q8_0)]
    [InlineData(DType.Q4_0)]
    [InlineData(DType.Q4_K)]
    [InlineData(DType.Q6_K)]
    public void QuantizedMatMulMatchesTheReferenceOnDequantizedWeights(DType type)
    {
        var random = new Random((int)type);
        var blocked = type is DType.Q8_0 or DType.Q4_0;
        using var store = new NativeTensors();
        foreach (var (rows, columns) in new[] { (1, 256), (3, 512), (17, 256) })
        {
            var w = store.Add("w", DType.F32, [rows, columns], MemoryMarshal.AsBytes(RandomArray(random, rows * columns).AsSpan()));
            var q = store.Convert(w, type);
            var bias = RandomArray(random, rows);
            for (var n = 1; n <= 9; n += 2)
            {
                var x = RandomArray(random, n * columns);
                // Block types with an integer kernel see int8 activations; the others see x itself.
                var seen = blocked ? AsQuantized(x, n, columns) : x;
                var expected = new float[n * rows];
                ReferenceKernels.Instance.MatMul(seen, n, q, bias, expected);
                var unquantized = new float[n * rows];
                ReferenceKernels.Instance.MatMul(x, n, q, bias, unquantized);
                foreach (var k in variants.All)
                {
                    var actual = new float[n * rows];
                    k.MatMul(x, n, q, bias, actual);
                    var error = ModelVerifier.RelativeError(actual, expected);
                    Assert.True(error <= 1e-5, $"{type} [{rows}x{columns}] n={n} {k.VectorBits} bits {k.QuantPath}: error {error}");
                    // Quantizing the activations costs well under 1% of the outputs' scale.
                    Assert.True(ModelVerifier.RelativeError(actual, unquantized) <= 1e-2, $"{type} n={n}: activation quantization error");
                }
            }
        }
    }

    [Fact]
    public void QuantizedRowsDoNotDependOnTheBatch()
    {
        var random = new Random(2);
        using var store = new NativeTensors();
        var w = RandomQuantized(store, DType.Q4_0, 70, 96, random);
        variants.AssertRowsDoNotDependOnTheBatch(w, RandomArray(random, 11 * 96), 11);
    }

    private static Tensor RandomQuantized(NativeTensors store, DType type, int rows, int columns, Random random) =>
        store.Convert(store.Add("w", DType.F32, [rows, columns], MemoryMarshal.AsBytes(RandomArray(random, rows * columns).AsSpan())), type);

    [Theory]
    [InlineData(DType.Q8_0, 96)]
    [InlineData(DType.Q4_0, 96)]
    [InlineData(DType.Q4_K, 512)]
    public void InterleavingKeepsEveryRow(DType type, int columns)
    {
        var random = new Random(5);
        using var store = new NativeTensors();
        var rowLayout = RandomQuantized(store, type, 24, columns, random);
        var original = Enumerable.Range(0, 24).Select(r => rowLayout.RowBytes(r).ToArray()).ToArray();
        var interleaved = store.Interleaved(rowLayout, r => 23 - r);
        Assert.Equal(TensorLayout.Interleaved, interleaved.Layout);
        Assert.Equal(InterleavedRows.ByteCount(type, 24, columns), interleaved.ByteLength);
        var bytes = new byte[original[0].Length];
        for (var r = 0; r < 24; r++)
        {
            InterleavedRows.CopyRow(type, interleaved.Pointer, columns, r, bytes);
            Assert.Equal(original[23 - r], bytes);
            var expected = new float[columns];
            Quants.Dequantize(type, original[23 - r], expected);
            var actual = new float[columns];
            interleaved.ReadRow(r, actual);
            Assert.Equal(expected, actual);
        }

        Assert.Throws<InvalidOperationException>(() => interleaved.RowBytes(0));
        Assert.False(InterleavedRows.Supports(type, 12, columns));
        Assert.False(InterleavedRows.Supports(DType.F16, 8, columns));
        Assert.Throws<ArgumentException>(() => store.Interleaved(RandomQuantized(store, type, 12, columns, random)));

        // A block scale of +infinity (f16 0x7C00) marks a corrupt file; kernels convert scales assuming finite ones.
        var corrupt = RandomQuantized(store, type, 8, columns, random);
        var blockBytes = DTypes.BlockBytes(type);
        corrupt.Pointer[5 * (int)corrupt.RowByteCount + blockBytes] = 0x00;
        corrupt.Pointer[5 * (int)corrupt.RowByteCount + blockBytes + 1] = 0x7C;
        var error = Assert.Throws<ModelFormatException>(() => store.Interleaved(corrupt));
        Assert.Contains("row 5, ", error.Message);
        Assert.Contains("block 1 has a scale that is infinite or NaN", error.Message);
    }

    [Theory]
    [InlineData(DType.Q8_0)]
    [InlineData(DType.Q4_0)]
    [InlineData(DType.Q4_K)]
    public void InterleavedMatMulMatchesTheReference(DType type)
    {
        var random = new Random(9 + (int)type);
        var shapes = type == DType.Q4_K ? new[] { (8, 256), (24, 512), (40, 768) } : new[] { (8, 32), (24, 96), (40, 512) };
        foreach (var (rows, columns) in shapes)
        {
            using var store = new NativeTensors();
            var rowLayout = RandomQuantized(store, type, rows, columns, random);
            var copy = store.Add("copy", type, [rows, columns], new ReadOnlySpan<byte>(rowLayout.Pointer, (int)rowLayout.ByteLength));
            var interleaved = store.Interleaved(rowLayout);
            var bias = RandomArray(random, rows);
            foreach (var n in new[] { 1, 2, 3, 4, 5, 9 })
            {
                // Values of either sign and a wide range, so that each block's int8 activations reach ±127.
                var x = RandomArray(random, n * columns).Select((v, i) => v * (1 + i % 7)).ToArray();
                var expected = new float[n * rows];
                ReferenceKernels.Instance.MatMul(AsQuantized(x, n, columns), n, copy, bias, expected);
                var unquantized = new float[n * rows];
                ReferenceKernels.Instance.MatMul(x, n, copy, bias, unquantized);
                foreach (var k in variants.All)
                {
                    var actual = new float[n * rows];
                    k.MatMul(x, n, interleaved, bias, actual);
                    // The portable path converts interleaved weights to f32 and so sees x itself.
                    var target = k.QuantPath == QuantDot.Path.Portable ? unquantized : expected;
                    var error = ModelVerifier.RelativeError(actual, target);
                    Assert.True(error <= 1e-5, $"{type} [{rows}x{columns}] n={n} {k.VectorBits} bits {k.QuantPath}: error {error}");
                }
            }
        }
    }

    [Fact]
    public void InterleavedQ4_0SumsDoNotOverflowAtTheExtremes()
    {
        // Nibble 15 almost everywhere (one −1 per block sets the scale; 0.875 is then +7) against activations of +127:
        // the largest 16-bit partial sums the Q4_0 kernel forms.
        const int rows = 16, columns = 128;
        var weights = Enumerable.Range(0, rows * columns).Select(i => i % 32 == 0 ? -1f : 0.875f).ToArray();
        using var store = new NativeTensors();
        var q = store.Convert(store.Add("w", DType.F32, [rows, columns], MemoryMarshal.AsBytes(weights.AsSpan())), DType.Q4_0);
        var copy = store.Add("copy", DType.Q4_0, [rows, columns], new ReadOnlySpan<byte>(q.Pointer, (int)q.ByteLength));
        var interleaved = store.Interleaved(q);
        foreach (var sign in new[] { 1f, -1f })
        {
            var x = Enumerable.Repeat(sign, 4 * columns).ToArray();
            var expected = new float[4 * rows];
            ReferenceKernels.Instance.MatMul(x, 4, copy, [], expected);
            foreach (var k in variants.All)
            {
                var actual = new float[4 * rows];
                k.MatMul(x, 4, interleaved, [], actual);
                Assert.True(ModelVerifier.RelativeError(actual, expected) <= 1e-5, $"{k.QuantPath} sign {sign}");
            }
        }
    }

    [Fact]
    public void InterleavedRowsDoNotDependOnTheBatchOrThreads()
    {
        var random = new Random(3);
        foreach (var (type, columns) in new[] { (DType.Q8_0, 160), (DType.Q4_0, 160), (DType.Q4_K, 512) })
        {
            using var store = new NativeTensors();
            var w = store.Interleaved(RandomQuantized(store, type, 48, columns, random));
            variants.AssertRowsDoNotDependOnTheBatch(w, RandomArray(random, 11 * columns), 11);
        }
    }

    [Theory]
    [InlineData(DType.Q8_0, 64)]
    [InlineData(DType.Q4_0, 64)]
    [InlineData(DType.Q4_K, 256)]
    public void InterleavedEmbeddingsAreTheRows(DType type, int columns)
    {
        var random = new Random(4);
        using var store = new NativeTensors();
        var rowLayout = RandomQuantized(store, type, 16, columns, random);
        var copy = store.Add("copy", type, [16, columns], new ReadOnlySpan<byte>(rowLayout.Pointer, (int)rowLayout.ByteLength));
        var interleaved = store.Interleaved(rowLayout);
        int[] tokens = [3, 15, 0, 8, 3];
        var expected = new float[tokens.Length * columns];
        ReferenceKernels.Instance.Embed(copy, tokens, expected);
        foreach (var k in variants.All)
        {
            var actual = new float[expected.Length];
            k.Embed(interleaved, tokens, actual);
            Assert.Equal(expected, actual);
        }
    }
}
