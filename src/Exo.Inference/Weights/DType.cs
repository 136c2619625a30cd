using System.Runtime.CompilerServices;

namespace Exo.Inference.Weights;

/// <summary>
/// Element types of weight tensors: plain floats, and GGML's quantized block formats, where a row is a run of fixed-size
/// blocks each holding <see cref="DTypes.BlockSize"/> values in <see cref="DTypes.BlockBytes"/> bytes.
/// </summary>
public enum DType
{
    F32,
    F16,
    BF16,
    /// <summary>32 values: f16 scale d, 32 × int8; x = d·q.</summary>
    Q8_0,
    /// <summary>32 values: f16 scale d, 16 bytes of nibbles (low nibbles are values 0..15, high 16..31); x = d·(q − 8).</summary>
    Q4_0,
    /// <summary>32 values: f16 scale d, f16 minimum m, 16 bytes of nibbles laid out as Q4_0; x = d·q + m.</summary>
    Q4_1,
    /// <summary>256 values: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins for 8 sub-blocks of 32, 128 bytes of nibbles.</summary>
    Q4_K,
    /// <summary>256 values: as Q4_K plus 32 bytes holding each value's fifth bit.</summary>
    Q5_K,
    /// <summary>256 values: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 int8 scales, f16 d; x = d·scale·(q − 32).</summary>
    Q6_K,
}

public static class DTypes
{
    /// <summary>Values per block: 1 for plain floats.</summary>
    public static int BlockSize(DType type) => type switch
    {
        DType.F32 or DType.F16 or DType.BF16 => 1,
        DType.Q8_0 or DType.Q4_0 or DType.Q4_1 => 32,
        DType.Q4_K or DType.Q5_K or DType.Q6_K => 256,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>Bytes per block (for plain floats, bytes per value).</summary>
    public static int BlockBytes(DType type) => type switch
    {
        DType.F32 => 4,
        DType.F16 or DType.BF16 => 2,
        DType.Q8_0 => 34,
        DType.Q4_0 => 18,
        DType.Q4_1 => 20,
        DType.Q4_K => 144,
        DType.Q5_K => 176,
        DType.Q6_K => 210,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>Bytes per value of a plain float type; block types have no whole-byte size per value.</summary>
    public static int SizeOf(DType type) => IsQuantized(type)
        ? throw new ArgumentException($"{type} is a block type: use {nameof(ByteCount)}", nameof(type))
        : BlockBytes(type);

    public static bool IsQuantized(DType type) => BlockSize(type) > 1;

    /// <summary>Bytes of <paramref name="count"/> values; a count that is not whole blocks is a format error.</summary>
    public static long ByteCount(DType type, long count)
    {
        var block = BlockSize(type);
        if (count < 0 || count % block != 0)
            throw new ModelFormatException($"{count} values of {type} are not whole blocks of {block}");
        var blocks = count / block;
        if (blocks > long.MaxValue / BlockBytes(type)) throw new ModelFormatException($"{count} values of {type} overflow a byte count");
        return blocks * BlockBytes(type);
    }

    /// <summary>GGML's type ids, as stored in GGUF tensor infos.</summary>
    public static DType FromGgml(uint id) => id switch
    {
        0 => DType.F32,
        1 => DType.F16,
        2 => DType.Q4_0,
        3 => DType.Q4_1,
        8 => DType.Q8_0,
        12 => DType.Q4_K,
        13 => DType.Q5_K,
        14 => DType.Q6_K,
        30 => DType.BF16,
        _ => throw new ModelFormatException($"GGML tensor type {id} is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)"),
    };

    public static uint ToGgml(DType type) => type switch
    {
        DType.F32 => 0,
        DType.F16 => 1,
        DType.Q4_0 => 2,
        DType.Q4_1 => 3,
        DType.Q8_0 => 8,
        DType.Q4_K => 12,
        DType.Q5_K => 13,
        DType.Q6_K => 14,
        DType.BF16 => 30,
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

    /// <summary>Parses a command-line type name (f16, q8_0, q4_k, ...), case-insensitively.</summary>
    public static DType Parse(string name) =>
        Enum.TryParse<DType>(name, ignoreCase: true, out var type) && Enum.IsDefined(type) && !name.All(char.IsDigit)
            ? type
            : throw new ArgumentException($"unknown type '{name}' (known: {string.Join(", ", Enum.GetNames<DType>().Select(n => n.ToLowerInvariant()))})");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BFloat16ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfToSingle(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>Rounds to the nearest f16, ties to even (as ggml's conversion does).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort SingleToHalf(float value) => BitConverter.HalfToUInt16Bits((Half)value);
}
