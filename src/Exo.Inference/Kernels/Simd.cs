using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Exo.Inference.Kernels;

/// <summary>
/// One vector width's float operations. The fast kernels are written once against this and instantiated for
/// <see cref="Vector512{T}"/>, <see cref="Vector256{T}"/> and <see cref="Vector128{T}"/>, so AVX-512, AVX2 and NEON
/// each get a fast path; the JIT specialises every generic kernel per width and inlines these members.
/// </summary>
internal unsafe interface ISimd<TVec> where TVec : struct
{
    /// <summary>Floats per vector.</summary>
    static abstract int Count { get; }

    static abstract TVec Zero { get; }

    static abstract TVec Broadcast(float value);

    static abstract TVec Load(float* source);

    static abstract void Store(TVec value, float* destination);

    static abstract TVec Add(TVec a, TVec b);

    static abstract TVec Subtract(TVec a, TVec b);

    static abstract TVec Divide(TVec a, TVec b);

    static abstract TVec Multiply(TVec a, TVec b);

    /// <summary>a · b + c.</summary>
    static abstract TVec MultiplyAdd(TVec a, TVec b, TVec c);

    static abstract TVec Max(TVec a, TVec b);

    static abstract TVec Min(TVec a, TVec b);

    /// <summary>Rounds each lane to the nearest integer (ties to even).</summary>
    static abstract TVec Round(TVec value);

    /// <summary>2^n for lanes holding integers n in [−126, 127], built from the exponent bits.</summary>
    static abstract TVec Pow2(TVec n);

    static abstract float Sum(TVec value);

    static abstract float MaxAcross(TVec value);

    /// <summary>Converts 2 · Count IEEE half floats to two vectors of floats (exactly, subnormals, infinities and NaN included).</summary>
    static abstract void LoadHalf(ushort* source, out TVec low, out TVec high);

    /// <summary>
    /// Converts 2 · Count IEEE half floats known to hold no infinity or NaN: exact for every finite value (subnormals
    /// included) and cheaper than <see cref="LoadHalf"/>, which must also recognise the special values.
    /// </summary>
    static abstract void LoadFiniteHalf(ushort* source, out TVec low, out TVec high);

    /// <summary>Converts 2 · Count bfloat16 values to two vectors of floats.</summary>
    static abstract void LoadBFloat(ushort* source, out TVec low, out TVec high);
}

/// <summary>The bit manipulations shared by every width's half-float conversion.</summary>
internal static class HalfBits
{
    /// <summary>2^112: rebiases a half's exponent field shifted into a float's place (subnormals come out right too).</summary>
    public const uint Rebias = 0x77800000;

    /// <summary>
    /// What a half with all exponent bits set (infinity, NaN) becomes after rebiasing: 2^16 or more, above the largest
    /// finite half (65504); a float compare finds them, and setting every exponent bit makes them infinity or NaN again.
    /// </summary>
    public const float Special = 65536f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> ToSingle(Vector128<uint> h)
    {
        var scaled = ((h & Vector128.Create(0x7FFFu)) << 13).AsSingle() * Vector128.Create(Rebias).AsSingle();
        var special = Vector128.GreaterThanOrEqual(scaled, Vector128.Create(Special)).AsUInt32() & Vector128.Create(0x7F800000u);
        return (scaled.AsUInt32() | special | ((h & Vector128.Create(0x8000u)) << 16)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToSingle(Vector256<uint> h)
    {
        var scaled = ((h & Vector256.Create(0x7FFFu)) << 13).AsSingle() * Vector256.Create(Rebias).AsSingle();
        var special = Vector256.GreaterThanOrEqual(scaled, Vector256.Create(Special)).AsUInt32() & Vector256.Create(0x7F800000u);
        return (scaled.AsUInt32() | special | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }

    /// <summary>
    /// The same conversion from halves sign-extended to 32 bits (what vpmovsxwd loads straight from memory): see
    /// <see cref="FiniteToSingle(Vector256{int})"/>, then infinities and NaN get every exponent bit set.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToSingle(Vector256<int> h)
    {
        var scaled = FiniteToSingle(h);
        var special = Vector256.GreaterThanOrEqual(Vector256.Abs(scaled), Vector256.Create(Special)).AsUInt32() & Vector256.Create(0x7F800000u);
        return (scaled.AsUInt32() | special).AsSingle();
    }

    /// <summary>Sign-extended value bits kept by <see cref="FiniteToSingle(Vector256{int})"/>: the sign and the 15 bits below it.</summary>
    private const int FiniteMask = unchecked((int)0x8FFFE000);

    /// <summary>
    /// Converts finite halves sign-extended to 32 bits: shifted by 13, exponent and mantissa land in a float's place and
    /// the sign in bit 31, with copies in bits 28..30 that one mask clears; the exact product by 2^112 rebiases the
    /// exponent (a subnormal half becomes a subnormal float that the product normalises). Four instructions per vector.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> FiniteToSingle(Vector128<int> h) =>
        ((h << 13) & Vector128.Create(FiniteMask)).AsSingle() * Vector128.Create(Rebias).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> FiniteToSingle(Vector256<int> h) =>
        ((h << 13) & Vector256.Create(FiniteMask)).AsSingle() * Vector256.Create(Rebias).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> FiniteToSingle(Vector512<int> h) =>
        ((h << 13) & Vector512.Create(FiniteMask)).AsSingle() * Vector512.Create(Rebias).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ToSingle(Vector512<uint> h)
    {
        var scaled = ((h & Vector512.Create(0x7FFFu)) << 13).AsSingle() * Vector512.Create(Rebias).AsSingle();
        var special = Vector512.GreaterThanOrEqual(scaled, Vector512.Create(Special)).AsUInt32() & Vector512.Create(0x7F800000u);
        return (scaled.AsUInt32() | special | ((h & Vector512.Create(0x8000u)) << 16)).AsSingle();
    }
}

internal readonly unsafe struct Simd128 : ISimd<Vector128<float>>
{
    public static int Count => Vector128<float>.Count;
    public static Vector128<float> Zero => Vector128<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Broadcast(float value) => Vector128.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load(float* source) => Vector128.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> value, float* destination) => value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Subtract(Vector128<float> a, Vector128<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Divide(Vector128<float> a, Vector128<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Multiply(Vector128<float> a, Vector128<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Min(Vector128<float> a, Vector128<float> b) => Vector128.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Round(Vector128<float> value) => Vector128.Round(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Pow2(Vector128<float> n) => ((Vector128.ConvertToInt32(n) + Vector128.Create(127)) << 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector128<float> value) => Vector128.Sum(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector128<float> value)
    {
        var m = float.NegativeInfinity;
        for (var i = 0; i < Vector128<float>.Count; i++) m = MathF.Max(m, value[i]);
        return m;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadHalf(ushort* source, out Vector128<float> low, out Vector128<float> high)
    {
        var (l, h) = Vector128.Widen(Vector128.Load(source));
        low = HalfBits.ToSingle(l);
        high = HalfBits.ToSingle(h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadFiniteHalf(ushort* source, out Vector128<float> low, out Vector128<float> high)
    {
        var (l, h) = Vector128.Widen(Vector128.Load((short*)source));
        low = HalfBits.FiniteToSingle(l);
        high = HalfBits.FiniteToSingle(h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadBFloat(ushort* source, out Vector128<float> low, out Vector128<float> high)
    {
        var (l, h) = Vector128.Widen(Vector128.Load(source));
        low = (l << 16).AsSingle();
        high = (h << 16).AsSingle();
    }
}

internal readonly unsafe struct Simd256 : ISimd<Vector256<float>>
{
    public static int Count => Vector256<float>.Count;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Broadcast(float value) => Vector256.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(float* source) => Vector256.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> value, float* destination) => value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Divide(Vector256<float> a, Vector256<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Min(Vector256<float> a, Vector256<float> b) => Vector256.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Round(Vector256<float> value) => Vector256.Round(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Pow2(Vector256<float> n) => ((Vector256.ConvertToInt32(n) + Vector256.Create(127)) << 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> value) => Vector256.Sum(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector256<float> value) => Simd128.MaxAcross(Vector128.Max(value.GetLower(), value.GetUpper()));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadHalf(ushort* source, out Vector256<float> low, out Vector256<float> high)
    {
        LoadSignExtended(source, out var l, out var h);
        low = HalfBits.ToSingle(l);
        high = HalfBits.ToSingle(h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadFiniteHalf(ushort* source, out Vector256<float> low, out Vector256<float> high)
    {
        LoadSignExtended(source, out var l, out var h);
        low = HalfBits.FiniteToSingle(l);
        high = HalfBits.FiniteToSingle(h);
    }

    /// <summary>16 halves sign-extended to 32 bits: AVX2 does it in the load itself (vpmovsxwd).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadSignExtended(ushort* source, out Vector256<int> low, out Vector256<int> high)
    {
        if (Avx2.IsSupported)
        {
            low = Avx2.ConvertToVector256Int32((short*)source);
            high = Avx2.ConvertToVector256Int32((short*)source + 8);
            return;
        }

        (low, high) = Vector256.Widen(Vector256.Load((short*)source));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadBFloat(ushort* source, out Vector256<float> low, out Vector256<float> high)
    {
        if (Avx2.IsSupported)
        {
            low = (Avx2.ConvertToVector256Int32(source) << 16).AsSingle();
            high = (Avx2.ConvertToVector256Int32(source + 8) << 16).AsSingle();
            return;
        }

        var (l, h) = Vector256.Widen(Vector256.Load(source));
        low = (l << 16).AsSingle();
        high = (h << 16).AsSingle();
    }
}

internal readonly unsafe struct Simd512 : ISimd<Vector512<float>>
{
    public static int Count => Vector512<float>.Count;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Broadcast(float value) => Vector512.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(float* source) => Vector512.Load(source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> value, float* destination) => value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => a - b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Divide(Vector512<float> a, Vector512<float> b) => a / b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Min(Vector512<float> a, Vector512<float> b) => Vector512.Min(a, b);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Round(Vector512<float> value) => Vector512.Round(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Pow2(Vector512<float> n) => ((Vector512.ConvertToInt32(n) + Vector512.Create(127)) << 23).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> value) => Vector512.Sum(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector512<float> value) => Simd256.MaxAcross(Vector256.Max(value.GetLower(), value.GetUpper()));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadHalf(ushort* source, out Vector512<float> low, out Vector512<float> high)
    {
        var (l, h) = Vector512.Widen(Vector512.Load(source));
        low = HalfBits.ToSingle(l);
        high = HalfBits.ToSingle(h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadFiniteHalf(ushort* source, out Vector512<float> low, out Vector512<float> high)
    {
        var (l, h) = Vector512.Widen(Vector512.Load((short*)source));
        low = HalfBits.FiniteToSingle(l);
        high = HalfBits.FiniteToSingle(h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void LoadBFloat(ushort* source, out Vector512<float> low, out Vector512<float> high)
    {
        var (l, h) = Vector512.Widen(Vector512.Load(source));
        low = (l << 16).AsSingle();
        high = (h << 16).AsSingle();
    }
}
