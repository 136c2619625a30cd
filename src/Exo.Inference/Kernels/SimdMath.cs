using System.Runtime.CompilerServices;

namespace Exo.Inference.Kernels;

/// <summary>Elementary functions written once against <see cref="ISimd{TVec}"/> for every vector width.</summary>
internal static class SimdMath
{
    // ln 2 split so that n · Ln2High is exact for the n that occur (|n| ≤ 127): the reduction loses no bits.
    private const float Ln2High = 0.693359375f;
    private const float Ln2Low = -2.12194440e-4f;
    private const float Log2E = 1.44269504f;

    /// <summary>
    /// e^x to about one unit in the last place: x = n ln 2 + r with |r| ≤ ln 2 / 2, e^r by its Taylor series to r^6
    /// (the next term is below 1.2e-7 of the result), times 2^n from the exponent bits. The input is clamped to
    /// [−87.3, 88], where e^x stays a normal float: below it the result is 1.2e-38, not 0, which neither softmax (scores
    /// minus their max) nor SiLU can tell apart. .NET's vector Exp cost about 22 cycles a value here, more than the
    /// rest of a decode step's attention; this is about two.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static V Exp<S, V>(V x) where S : ISimd<V> where V : struct
    {
        x = S.Min(S.Max(x, S.Broadcast(-87.3f)), S.Broadcast(88f));
        var n = S.Round(S.Multiply(x, S.Broadcast(Log2E)));
        var r = S.MultiplyAdd(n, S.Broadcast(-Ln2High), x);
        r = S.MultiplyAdd(n, S.Broadcast(-Ln2Low), r);
        var p = S.Broadcast(1f / 720);
        p = S.MultiplyAdd(p, r, S.Broadcast(1f / 120));
        p = S.MultiplyAdd(p, r, S.Broadcast(1f / 24));
        p = S.MultiplyAdd(p, r, S.Broadcast(1f / 6));
        p = S.MultiplyAdd(p, r, S.Broadcast(0.5f));
        p = S.MultiplyAdd(p, r, S.Broadcast(1f));
        p = S.MultiplyAdd(p, r, S.Broadcast(1f));
        return S.Multiply(p, S.Pow2(n));
    }
}
