using System.Runtime.CompilerServices;

namespace Exo.Inference.Weights;

/// <summary>Element types of weight tensors. Quantized block types join this list with the fast kernels.</summary>
public enum DType
{
    F32,
    F16,
    BF16,
}

public static class DTypes
{
    public static int SizeOf(DType type) => type switch
    {
        DType.F32 => 4,
        DType.F16 => 2,
        DType.BF16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>Parses a safetensors dtype string; other types are a clear error naming the tensor.</summary>
    public static DType ParseSafetensors(string name, string tensor) => name switch
    {
        "F32" => DType.F32,
        "F16" => DType.F16,
        "BF16" => DType.BF16,
        _ => throw new ModelFormatException($"tensor '{tensor}' has dtype {name}; supported are F32, F16 and BF16"),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BFloat16ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfToSingle(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);
}
