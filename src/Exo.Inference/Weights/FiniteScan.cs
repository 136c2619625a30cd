using System.Numerics;

namespace Exo.Inference.Weights;

/// <summary>Vectorized checks that a run of stored values holds no infinity or NaN.</summary>
internal static unsafe class FiniteScan
{
    // A half is infinity or NaN exactly when all five exponent bits are set: its magnitude bits are then this or more.
    private const ushort HalfSpecial = 0x7C00;

    // Halves between early-exit checks: large enough that the check costs nothing, small enough to stop soon.
    private const long CheckEvery = 1 << 16;

    /// <summary>Whether none of the <paramref name="count"/> halves at <paramref name="data"/> is an infinity or NaN.</summary>
    public static bool Halves(ushort* data, long count)
    {
        var magnitude = new Vector<ushort>(0x7FFF);
        var limit = new Vector<ushort>(HalfSpecial);
        var width = Vector<ushort>.Count;
        long i = 0;
        while (i + width <= count)
        {
            // The largest magnitude of a chunk: one AND and one MAX per vector keeps the scan at memory speed.
            var largest = Vector<ushort>.Zero;
            var end = Math.Min(count, i + CheckEvery);
            for (; i + width <= end; i += width) largest = Vector.Max(largest, Vector.Load(data + i) & magnitude);
            if (Vector.GreaterThanOrEqualAny(largest, limit)) return false;
        }

        for (; i < count; i++)
        {
            if ((data[i] & 0x7FFF) >= HalfSpecial) return false;
        }

        return true;
    }
}
