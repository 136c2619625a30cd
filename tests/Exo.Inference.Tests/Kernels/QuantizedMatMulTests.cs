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
        var w = store.Convert(store.Add("w", DType.F32, [70, 96], MemoryMarshal.AsBytes(RandomArray(random, 70 * 96).AsSpan())), DType.Q4_0);
        const int n = 11;
        var x = RandomArray(random, n * 96);
        foreach (var k in variants.All)
        {
            var batched = new float[n * 70];
            k.MatMul(x, n, w, [], batched);
            for (var t = 0; t < n; t++)
            {
                var single = new float[70];
                k.MatMul(x.AsSpan(t * 96, 96), 1, w, [], single);
                Assert.Equal(batched.AsSpan(t * 70, 70).ToArray(), single);
            }
        }
    }
}
