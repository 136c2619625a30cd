using Exo.Inference.Kernels;
using Exo.Inference.Weights;

namespace Exo.Inference.Tests.Weights;

public sealed class QuantsTests
{
    private static readonly DType[] BlockTypes = [DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q4_K, DType.Q5_K, DType.Q6_K];

    private static float[] Random(int count, int seed, float scale = 1f)
    {
        var random = new Random(seed);
        var values = new float[count];
        // Gaussian-ish weights with occasional outliers, like trained matrices.
        for (var i = 0; i < count; i++)
            values[i] = scale * (float)((random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5) * (random.Next(50) == 0 ? 3 : 1));
        return values;
    }

    private static float[] RoundTrip(DType type, float[] values)
    {
        var bytes = new byte[DTypes.ByteCount(type, values.Length)];
        Quants.Quantize(type, values, bytes);
        var decoded = new float[values.Length];
        Quants.Dequantize(type, bytes, decoded);
        return decoded;
    }

    private static double RelativeRms(float[] expected, float[] actual)
    {
        double error = 0, norm = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            error += Math.Pow(expected[i] - actual[i], 2);
            norm += (double)expected[i] * expected[i];
        }

        return Math.Sqrt(error / norm);
    }

    [Theory]
    [InlineData(DType.Q8_0, 0.008)]
    [InlineData(DType.Q4_0, 0.12)]
    [InlineData(DType.Q4_1, 0.10)]
    [InlineData(DType.Q4_K, 0.09)]
    [InlineData(DType.Q5_K, 0.045)]
    [InlineData(DType.Q6_K, 0.022)]
    [InlineData(DType.F16, 0.0005)]
    [InlineData(DType.BF16, 0.004)]
    public void RoundTripErrorIsWithinTheFormatsPrecision(DType type, double bound)
    {
        var values = Random(4096, 7, 0.02f);
        var error = RelativeRms(values, RoundTrip(type, values));
        Assert.InRange(error, bound / 20, bound);
    }

    [Fact]
    public void Q8_0ErrorPerValueIsAtMostHalfAStep()
    {
        var values = Random(32 * 5, 3);
        var decoded = RoundTrip(DType.Q8_0, values);
        for (var b = 0; b < 5; b++)
        {
            var block = values.AsSpan(32 * b, 32);
            var amax = 0f;
            foreach (var v in block) amax = Math.Max(amax, Math.Abs(v));
            var step = amax / 127;
            for (var i = 0; i < 32; i++) Assert.InRange(Math.Abs(values[32 * b + i] - decoded[32 * b + i]), 0, step * 0.5 + amax * 1e-3);
        }
    }

    [Fact]
    public void Q4_0KeepsIntegersInItsRangeExactly()
    {
        // The largest magnitude is -8, so d = 1 and every integer in [-8, 7] is a level.
        var values = Enumerable.Range(0, 64).Select(i => (float)(i % 16 - 8)).ToArray();
        Assert.Equal(values, RoundTrip(DType.Q4_0, values));
        // With +8 the largest, d = -1 and [-7, 8] are levels.
        var positive = values.Select(v => -v).ToArray();
        Assert.Equal(positive, RoundTrip(DType.Q4_0, positive));
    }

    [Fact]
    public void ZeroBlocksStayZero()
    {
        foreach (var type in BlockTypes) Assert.All(RoundTrip(type, new float[512]), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void ConstantBlocksRoundTripClosely()
    {
        foreach (var type in BlockTypes)
        {
            var values = Enumerable.Repeat(0.75f, 256).ToArray();
            Assert.All(RoundTrip(type, values), v => Assert.Equal(0.75, v, 0.75 * 0.02));
        }
    }

    private static byte[] Half(float value) => BitConverter.GetBytes(DTypes.SingleToHalf(value));

    [Fact]
    public void Q8_0DecodesAHandMadeBlock()
    {
        var block = new byte[34];
        Half(0.5f).CopyTo(block, 0);
        block[2] = 1;
        block[3] = unchecked((byte)-2);
        block[4] = 127;
        block[5] = unchecked((byte)-128);
        var y = new float[32];
        Quants.Dequantize(DType.Q8_0, block, y);
        Assert.Equal([0.5f, -1f, 63.5f, -64f, 0f], y[..5]);
    }

    [Fact]
    public void Q4_0AndQ4_1DecodeHandMadeBlocks()
    {
        var q40 = new byte[18];
        Half(1f).CopyTo(q40, 0);
        q40[2] = 0xF0; // value 0: nibble 0 → -8; value 16: nibble 15 → 7
        q40[3] = 0x9A; // value 1: 10 → 2; value 17: 9 → 1
        var y = new float[32];
        Quants.Dequantize(DType.Q4_0, q40, y);
        Assert.Equal((-8f, 2f, 7f, 1f, -8f), (y[0], y[1], y[16], y[17], y[2]));

        var q41 = new byte[20];
        Half(0.5f).CopyTo(q41, 0);
        Half(-1f).CopyTo(q41, 2);
        q41[4] = 0x21;
        Quants.Dequantize(DType.Q4_1, q41, y);
        Assert.Equal((-0.5f, 0f, -1f), (y[0], y[16], y[1]));
    }

    [Fact]
    public void Q4_KDecodesAHandMadeBlock()
    {
        var block = new byte[144];
        Half(1f).CopyTo(block, 0);
        Half(0.5f).CopyTo(block, 2);
        // Sub-block 0: scale 3, min 2 in the low 6 bits of bytes 0 and 4.
        block[4 + 0] = 3;
        block[4 + 4] = 2;
        // Sub-block 5: scale 42 = 0b10_1010, min 21 = 0b01_0101: low nibbles in byte 9, top bits in bytes 1 and 5.
        block[4 + 9] = 0xA | (0x5 << 4);
        block[4 + 1] = 2 << 6;
        block[4 + 5] = 1 << 6;
        block[16 + 0] = 0x47;  // value 0 (sub-block 0, low nibble) = 7; value 32 (sub-block 1) = 4
        block[16 + 64] = 0x30; // value 128 (sub-block 4) = 0; value 160 (sub-block 5, high nibble) = 3
        var y = new float[256];
        Quants.Dequantize(DType.Q4_K, block, y);
        Assert.Equal(1f * 3 * 7 - 0.5f * 2, y[0]);
        Assert.Equal(-0.5f * 2, y[1]);
        Assert.Equal(0f, y[32]); // sub-block 1 has scale 0 and min 0
        Assert.Equal(0f, y[128]);
        Assert.Equal(1f * 42 * 3 - 0.5f * 21, y[160]);
        Assert.Equal(-0.5f * 21, y[161]);
    }

    [Fact]
    public void Q5_KDecodesAHandMadeBlock()
    {
        var block = new byte[176];
        Half(1f).CopyTo(block, 0);
        Half(0f).CopyTo(block, 2);
        block[4 + 0] = 1; // sub-block 0 scale 1
        block[4 + 1] = 2; // sub-block 1 scale 2
        block[4 + 8] = 1; // sub-block 4 scale 1 (low nibble of byte 8)
        block[16 + 0] = 0x03; // fifth bits: value 0 (bit 0), value 32 (bit 1)
        block[16 + 1] = 0x10; // fifth bit of value 129 (chunk 2, bit 4)
        block[48 + 0] = 0x03; // value 0 low nibble 3, value 32 low nibble 0
        var y = new float[256];
        Quants.Dequantize(DType.Q5_K, block, y);
        Assert.Equal((19f, 32f, 16f, 0f), (y[0], y[32], y[129], y[1]));
    }

    [Fact]
    public void Q6_KDecodesAHandMadeBlock()
    {
        var block = new byte[210];
        Half(0.5f).CopyTo(block, 208);
        block[192 + 0] = 2;
        block[192 + 2] = unchecked((byte)-1);
        block[192 + 4] = 3;
        block[192 + 8] = 4;
        block[0] = 0x21;              // value 0 low nibble 1, value 64 low nibble 2
        block[128] = 0b00_01_11_10;   // high pairs: value 0 → 2, value 32 → 3, value 64 → 1, value 96 → 0
        block[64] = 0x0F;             // second half: value 128 low nibble 15, high pair 0
        var y = new float[256];
        Quants.Dequantize(DType.Q6_K, block, y);
        Assert.Equal(0.5f * 2 * (33 - 32), y[0]);
        Assert.Equal(0.5f * -1 * (48 - 32), y[32]);
        Assert.Equal(0.5f * 3 * (18 - 32), y[64]);
        Assert.Equal(0f, y[96]); // scale 6 is 0
        Assert.Equal(0.5f * 4 * (15 - 32), y[128]);
    }

    [Fact]
    public void QuantizersWriteTheLayoutTheDecodersRead()
    {
        // Values placed so each sub-block has its own range: a packing mix-up between sub-blocks shows as a large error.
        foreach (var type in new[] { DType.Q4_K, DType.Q5_K, DType.Q6_K })
        {
            var values = new float[512];
            for (var i = 0; i < values.Length; i++) values[i] = (i / 16 + 1) * ((i * 37 % 11) - 5) * 0.01f;
            // A packing mix-up gives errors near 1; the formats' own error here is a few percent.
            Assert.True(RelativeRms(values, RoundTrip(type, values)) < 0.1, $"{type}");
        }
    }

    [Theory]
    [InlineData(DType.Q8_0, 33)]
    [InlineData(DType.Q4_0, 16)]
    [InlineData(DType.Q4_K, 32)]
    [InlineData(DType.Q6_K, 300)]
    public void PartialBlocksAreRejected(DType type, int count)
    {
        Assert.Throws<ModelFormatException>(() => DTypes.ByteCount(type, count));
        Assert.ThrowsAny<Exception>(() => Quants.Quantize(type, new float[count], new byte[1000]));
    }

    [Fact]
    public void WrongByteLengthsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => Quants.Dequantize(DType.Q8_0, new byte[33], new float[32]));
        Assert.Throws<ArgumentException>(() => Quants.Quantize(DType.Q6_K, new float[256], new byte[211]));
    }

    [Theory]
    [InlineData(DType.Q8_0, 5, 96)]
    [InlineData(DType.Q4_0, 3, 160)]
    [InlineData(DType.Q4_K, 7, 512)]
    [InlineData(DType.Q6_K, 2, 768)]
    public void ReferenceMatMulOverBlockWeightsUsesTheDequantizedRows(DType type, int rows, int columns)
    {
        using var store = new NativeTensors();
        var weights = Random(rows * columns, rows);
        var f32 = store.Add("w", DType.F32, [rows, columns], System.Runtime.InteropServices.MemoryMarshal.AsBytes(weights.AsSpan()));
        var w = store.Convert(f32, type);
        Assert.Equal((rows, columns), (w.Rows, w.Columns));
        Assert.Equal(DTypes.ByteCount(type, (long)rows * columns), w.ByteLength);

        var x = Random(3 * columns, 11);
        var y = new float[3 * rows];
        ReferenceKernels.Instance.MatMul(x, 3, w, [], y);

        var row = new float[columns];
        for (var o = 0; o < rows; o++)
        {
            w.ReadRow(o, row);
            Assert.Equal(RoundTrip(type, weights.AsSpan(o * columns, columns).ToArray()), row);
            for (var t = 0; t < 3; t++)
            {
                var expected = 0.0;
                for (var i = 0; i < columns; i++) expected += (double)x[t * columns + i] * row[i];
                Assert.Equal((float)expected, y[t * rows + o]);
            }
        }
    }

    [Fact]
    public void TensorsWhoseRowsAreNotWholeBlocksAreRejected()
    {
        using var store = new NativeTensors();
        Assert.Throws<ModelFormatException>(() => store.Add("w", DType.Q8_0, [2, 48], new byte[2 * 51]));
        var f32 = store.Add("v", DType.F32, [2, 48], new byte[2 * 48 * 4]);
        Assert.Throws<ModelFormatException>(() => store.Convert(f32, DType.Q4_0));
    }

    [Fact]
    public void ParsesTypeNames()
    {
        Assert.Equal(DType.Q4_K, DTypes.Parse("q4_k"));
        Assert.Equal(DType.F16, DTypes.Parse("F16"));
        Assert.Throws<ArgumentException>(() => DTypes.Parse("q3_k"));
        Assert.Throws<ArgumentException>(() => DTypes.Parse("3"));
        foreach (var type in Enum.GetValues<DType>()) Assert.Equal(type, DTypes.FromGgml(DTypes.ToGgml(type)));
        Assert.Throws<ModelFormatException>(() => DTypes.FromGgml(6));
    }
}
