using System.Runtime.InteropServices;
using Exo.Inference.Weights;

namespace Exo.Inference.Tests.Weights;

public sealed class FiniteScanTests
{
    // More halves than one early-exit chunk (65,536) and not a whole number of vectors, so every part of the scan runs.
    private const int Count = 70_001;

    private static Tensor Halves(NativeTensors store, ushort[] values) =>
        store.Add("h", DType.F16, [values.Length], MemoryMarshal.AsBytes(values.AsSpan()));

    private static ushort[] FiniteValues()
    {
        // Every finite magnitude and sign, the largest finite ones (0x7BFF, 0xFBFF) and subnormals included.
        var values = new ushort[Count];
        for (var i = 0; i < Count; i++)
        {
            var h = (ushort)(i * 7919 % 65536);
            values[i] = (h & 0x7C00) == 0x7C00 ? (ushort)(h ^ 0x4000) : h;
        }

        values[0] = 0x7BFF;
        values[Count - 1] = 0xFBFF;
        return values;
    }

    [Fact]
    public void FiniteHalvesAreFound()
    {
        using var store = new NativeTensors();
        Assert.True(Halves(store, FiniteValues()).WithFiniteScan().Finite);
    }

    [Theory]
    [InlineData(0, 0x7C00)]       // +infinity, first value
    [InlineData(17, 0xFC00)]      // -infinity inside a vector
    [InlineData(65_535, 0x7E00)]  // quiet NaN, last value of the first chunk
    [InlineData(65_536, 0xFC01)]  // negative signalling NaN, first value of the second chunk
    [InlineData(Count - 1, 0x7FFF)] // NaN in the scalar tail
    public void ASingleInfinityOrNaNAnywhereIsFound(int index, int bits)
    {
        var values = FiniteValues();
        values[index] = (ushort)bits;
        using var store = new NativeTensors();
        Assert.False(Halves(store, values).WithFiniteScan().Finite);
    }

    [Fact]
    public void OnlyHalfTensorsAreScanned()
    {
        // bf16 and f32 conversions have no special-value cost, so their tensors are left unscanned.
        using var store = new NativeTensors();
        var f32 = store.Add("f", DType.F32, [4], MemoryMarshal.AsBytes(new float[] { 1, 2, 3, 4 }.AsSpan()));
        Assert.False(f32.WithFiniteScan().Finite);
        Assert.False(store.Convert(f32, DType.BF16).WithFiniteScan().Finite);
        Assert.True(store.Convert(f32, DType.F16).WithFiniteScan().Finite);
    }
}
