using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Exo.Inference.Weights;

/// <summary>
/// Reference conversions between f32 and every <see cref="DType"/>: plain loops that follow GGML's block layouts and
/// its reference quantizers' rounding rules, so a file written here holds the bytes llama.cpp would write. Fast kernels
/// read the blocks directly; these are what the tests and the reference kernels trust.
/// </summary>
public static partial class Quants
{
    /// <summary>Decodes <paramref name="destination"/>.Length values from their encoded bytes.</summary>
    public static void Dequantize(DType type, ReadOnlySpan<byte> source, Span<float> destination)
    {
        CheckLengths(type, source.Length, destination.Length);
        switch (type)
        {
            case DType.F32:
                MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
                break;
            case DType.F16:
                for (var i = 0; i < destination.Length; i++) destination[i] = DTypes.HalfToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source[(2 * i)..]));
                break;
            case DType.BF16:
                for (var i = 0; i < destination.Length; i++) destination[i] = DTypes.BFloat16ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source[(2 * i)..]));
                break;
            default:
                var size = DTypes.BlockSize(type);
                var bytes = DTypes.BlockBytes(type);
                for (var b = 0; b < destination.Length / size; b++)
                    DequantizeBlock(type, source.Slice(b * bytes, bytes), destination.Slice(b * size, size));
                break;
        }
    }

    /// <summary>Encodes <paramref name="source"/> into <paramref name="destination"/> (exactly its byte count).</summary>
    public static void Quantize(DType type, ReadOnlySpan<float> source, Span<byte> destination)
    {
        CheckLengths(type, destination.Length, source.Length);
        switch (type)
        {
            case DType.F32:
                MemoryMarshal.Cast<float, byte>(source).CopyTo(destination);
                break;
            case DType.F16:
                for (var i = 0; i < source.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(destination[(2 * i)..], DTypes.SingleToHalf(source[i]));
                break;
            case DType.BF16:
                for (var i = 0; i < source.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(destination[(2 * i)..], SingleToBFloat16(source[i]));
                break;
            default:
                var size = DTypes.BlockSize(type);
                var bytes = DTypes.BlockBytes(type);
                for (var b = 0; b < source.Length / size; b++)
                    QuantizeBlock(type, source.Slice(b * size, size), destination.Slice(b * bytes, bytes));
                break;
        }
    }

    private static void CheckLengths(DType type, int byteLength, int count)
    {
        var expected = DTypes.ByteCount(type, count);
        if (byteLength != expected) throw new ArgumentException($"{count} values of {type} take {expected} bytes, not {byteLength}");
    }

    private static void DequantizeBlock(DType type, ReadOnlySpan<byte> block, Span<float> y)
    {
        switch (type)
        {
            case DType.Q8_0: DequantizeQ8_0(block, y); break;
            case DType.Q4_0: DequantizeQ4_0(block, y); break;
            case DType.Q4_1: DequantizeQ4_1(block, y); break;
            case DType.Q4_K: DequantizeQ4_K(block, y); break;
            case DType.Q5_K: DequantizeQ5_K(block, y); break;
            case DType.Q6_K: DequantizeQ6_K(block, y); break;
            default: throw new NotSupportedException($"dtype {type}");
        }
    }

    private static void QuantizeBlock(DType type, ReadOnlySpan<float> x, Span<byte> block)
    {
        switch (type)
        {
            case DType.Q8_0: QuantizeQ8_0(x, block); break;
            case DType.Q4_0: QuantizeQ4_0(x, block); break;
            case DType.Q4_1: QuantizeQ4_1(x, block); break;
            case DType.Q4_K: QuantizeQ4_K(x, block); break;
            case DType.Q5_K: QuantizeQ5_K(x, block); break;
            case DType.Q6_K: QuantizeQ6_K(x, block); break;
            default: throw new NotSupportedException($"dtype {type}");
        }
    }

    /// <summary>f32 to bf16 rounding to nearest, ties to even; NaN stays a (quiet) NaN.</summary>
    public static ushort SingleToBFloat16(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    private static float Half(ReadOnlySpan<byte> bytes, int offset) => DTypes.HalfToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes[offset..]));

    private static void WriteHalf(Span<byte> bytes, int offset, float value) =>
        BinaryPrimitives.WriteUInt16LittleEndian(bytes[offset..], DTypes.SingleToHalf(value));

    /// <summary>GGML's nearest_int: round to nearest, ties to even (its magic-number trick, valid for |x| &lt; 2^22).</summary>
    private static int NearestInt(float x) => (int)MathF.Round(x);

    // Q8_0: [d: f16][q: int8 × 32].
    private static void DequantizeQ8_0(ReadOnlySpan<byte> block, Span<float> y)
    {
        var d = Half(block, 0);
        for (var j = 0; j < 32; j++) y[j] = (sbyte)block[2 + j] * d;
    }

    private static void QuantizeQ8_0(ReadOnlySpan<float> x, Span<byte> block)
    {
        var amax = 0f;
        foreach (var v in x) amax = MathF.Max(amax, MathF.Abs(v));
        var d = amax / 127;
        var id = d != 0 ? 1.0f / d : 0.0f;
        WriteHalf(block, 0, d);
        // roundf: ties away from zero.
        for (var j = 0; j < 32; j++) block[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }

    // Q4_0: [d: f16][16 bytes: value j in the low nibble of byte j, value j + 16 in its high nibble].
    private static void DequantizeQ4_0(ReadOnlySpan<byte> block, Span<float> y)
    {
        var d = Half(block, 0);
        for (var j = 0; j < 16; j++)
        {
            var q = block[2 + j];
            y[j] = ((q & 0xF) - 8) * d;
            y[j + 16] = ((q >> 4) - 8) * d;
        }
    }

    private static void QuantizeQ4_0(ReadOnlySpan<float> x, Span<byte> block)
    {
        // The value of largest magnitude, sign kept, maps to -8 so the full range [-8, 7] is used on its side.
        float amax = 0, max = 0;
        foreach (var v in x)
        {
            if (amax < MathF.Abs(v))
            {
                amax = MathF.Abs(v);
                max = v;
            }
        }

        var d = max / -8;
        var id = d != 0 ? 1.0f / d : 0.0f;
        WriteHalf(block, 0, d);
        for (var j = 0; j < 16; j++)
        {
            // (int8_t)(v + 8.5f) truncates toward zero.
            var lo = Math.Min(15, (int)(x[j] * id + 8.5f));
            var hi = Math.Min(15, (int)(x[j + 16] * id + 8.5f));
            block[2 + j] = (byte)(lo | (hi << 4));
        }
    }

    // Q4_1: [d: f16][m: f16][16 bytes of nibbles as Q4_0].
    private static void DequantizeQ4_1(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = Half(block, 0), m = Half(block, 2);
        for (var j = 0; j < 16; j++)
        {
            var q = block[4 + j];
            y[j] = (q & 0xF) * d + m;
            y[j + 16] = (q >> 4) * d + m;
        }
    }

    private static void QuantizeQ4_1(ReadOnlySpan<float> x, Span<byte> block)
    {
        float min = float.MaxValue, max = float.MinValue;
        foreach (var v in x)
        {
            if (v < min) min = v;
            if (v > max) max = v;
        }

        var d = (max - min) / 15;
        var id = d != 0 ? 1.0f / d : 0.0f;
        WriteHalf(block, 0, d);
        WriteHalf(block, 2, min);
        for (var j = 0; j < 16; j++)
        {
            var lo = Math.Min(15, (int)((x[j] - min) * id + 0.5f));
            var hi = Math.Min(15, (int)((x[j + 16] - min) * id + 0.5f));
            block[4 + j] = (byte)(lo | (hi << 4));
        }
    }
}
