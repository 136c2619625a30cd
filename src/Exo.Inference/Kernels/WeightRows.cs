using System.Runtime.CompilerServices;

namespace Exo.Inference.Kernels;

/// <summary>How the matmul kernel reads one element type of a weight row as f32 vectors, two vectors at a time.</summary>
internal unsafe interface IWeightRow
{
    static abstract int ElementBytes { get; }

    /// <summary>Elements [i, i + 2 · S.Count) of the row as two vectors.</summary>
    static abstract void Load<S, V>(byte* row, nint i, out V low, out V high) where S : ISimd<V> where V : struct;

    static abstract float Scalar(byte* row, nint i);
}

internal readonly unsafe struct F32Row : IWeightRow
{
    public static int ElementBytes => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load<S, V>(byte* row, nint i, out V low, out V high) where S : ISimd<V> where V : struct
    {
        var p = (float*)row + i;
        low = S.Load(p);
        high = S.Load(p + S.Count);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scalar(byte* row, nint i) => ((float*)row)[i];
}

internal readonly unsafe struct F16Row : IWeightRow
{
    public static int ElementBytes => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load<S, V>(byte* row, nint i, out V low, out V high) where S : ISimd<V> where V : struct =>
        S.LoadHalf((ushort*)row + i, out low, out high);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scalar(byte* row, nint i) => (float)BitConverter.UInt16BitsToHalf(((ushort*)row)[i]);
}

/// <summary>F16 rows of a tensor scanned at load and found to hold no infinity or NaN: the cheaper exact conversion.</summary>
internal readonly unsafe struct FiniteF16Row : IWeightRow
{
    public static int ElementBytes => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load<S, V>(byte* row, nint i, out V low, out V high) where S : ISimd<V> where V : struct =>
        S.LoadFiniteHalf((ushort*)row + i, out low, out high);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scalar(byte* row, nint i) => F16Row.Scalar(row, i);
}

internal readonly unsafe struct BF16Row : IWeightRow
{
    public static int ElementBytes => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load<S, V>(byte* row, nint i, out V low, out V high) where S : ISimd<V> where V : struct =>
        S.LoadBFloat((ushort*)row + i, out low, out high);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scalar(byte* row, nint i) => BitConverter.Int32BitsToSingle(((ushort*)row)[i] << 16);
}

/// <summary>A number of activation rows fixed at JIT time, so one kernel body serves 1 to 4 rows without branches.</summary>
internal interface IRowCount
{
    static abstract int Value { get; }
}

internal readonly struct Rows1 : IRowCount { public static int Value => 1; }

internal readonly struct Rows2 : IRowCount { public static int Value => 2; }

internal readonly struct Rows3 : IRowCount { public static int Value => 3; }

internal readonly struct Rows4 : IRowCount { public static int Value => 4; }
