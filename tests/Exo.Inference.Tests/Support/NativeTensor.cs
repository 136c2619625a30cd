using System.Runtime.InteropServices;
using Exo.Inference.Weights;

namespace Exo.Inference.Tests.Support;

/// <summary>A weight tensor in native memory, for kernel tests that need a <see cref="Tensor"/> without a file.</summary>
public sealed unsafe class NativeTensor : IDisposable
{
    private readonly byte* _data;

    public NativeTensor(DType type, int rows, int columns, ReadOnlySpan<byte> bytes)
    {
        _data = (byte*)NativeMemory.Alloc((nuint)Math.Max(1, bytes.Length));
        bytes.CopyTo(new Span<byte>(_data, bytes.Length));
        Tensor = new Tensor("test", type, [rows, columns], _data, bytes.Length);
    }

    public Tensor Tensor { get; }

    /// <summary>Random values in [-1, 1) stored as <paramref name="type"/>.</summary>
    public static NativeTensor Random(DType type, int rows, int columns, Random random)
    {
        var count = rows * columns;
        var bytes = new byte[count * DTypes.SizeOf(type)];
        for (var i = 0; i < count; i++)
        {
            var value = random.NextSingle() * 2 - 1;
            switch (type)
            {
                case DType.F32: BitConverter.TryWriteBytes(bytes.AsSpan(i * 4), value); break;
                case DType.F16: BitConverter.TryWriteBytes(bytes.AsSpan(i * 2), BitConverter.HalfToUInt16Bits((Half)value)); break;
                case DType.BF16: BitConverter.TryWriteBytes(bytes.AsSpan(i * 2), (ushort)(BitConverter.SingleToUInt32Bits(value) >> 16)); break;
                default: throw new ArgumentOutOfRangeException(nameof(type), type, null);
            }
        }

        return new NativeTensor(type, rows, columns, bytes);
    }

    public void Dispose() => NativeMemory.Free(_data);
}
