using System.Runtime.InteropServices;

namespace Exo.Inference.Weights;

/// <summary>
/// Tensors held in anonymous (unmanaged, 64-byte aligned) memory rather than a mapped file: weights quantized at load,
/// or built in memory. The memory lives until this store is disposed; tensors taken from it must not outlive it.
/// </summary>
public sealed unsafe class NativeTensors : IDisposable
{
    private readonly List<nint> _blocks = [];

    /// <summary>Bytes allocated so far.</summary>
    public long Bytes { get; private set; }

    /// <summary>A tensor holding a copy of <paramref name="bytes"/>, which must be exactly its encoded size.</summary>
    public Tensor Add(string name, DType type, long[] shape, ReadOnlySpan<byte> bytes)
    {
        var tensor = Allocate(name, type, shape);
        if (bytes.Length != tensor.ByteLength) throw new ArgumentException($"{name}: {bytes.Length} bytes given, {type}[{string.Join(", ", shape)}] needs {tensor.ByteLength}");
        bytes.CopyTo(new Span<byte>(tensor.Pointer, bytes.Length));
        return tensor;
    }

    /// <summary>Re-encodes a matrix (or vector) row by row into <paramref name="type"/>.</summary>
    public Tensor Convert(in Tensor source, DType type)
    {
        var tensor = Allocate(source.Name, type, source.Shape);
        var row = new float[source.Columns];
        var rowBytes = checked((int)tensor.RowByteCount);
        for (var r = 0; r < source.Rows; r++)
        {
            source.ReadRow(r, row);
            Quants.Quantize(type, row, new Span<byte>(tensor.Pointer + (long)r * rowBytes, rowBytes));
        }

        return tensor;
    }

    /// <summary>A copy of a matrix whose row r is row <paramref name="sourceRow"/>(r) of the source, bytes unchanged.</summary>
    public Tensor Permuted(in Tensor source, Func<int, int> sourceRow)
    {
        var tensor = Allocate(source.Name, source.Type, source.Shape);
        var rowBytes = checked((int)tensor.RowByteCount);
        for (var r = 0; r < source.Rows; r++)
            source.RowBytes(sourceRow(r)).CopyTo(new Span<byte>(tensor.Pointer + (long)r * rowBytes, rowBytes));
        return tensor;
    }

    /// <summary>
    /// A copy of a Q8_0, Q4_0 or Q4_K matrix in the interleaved layout; row r of the copy is row <paramref name="sourceRow"/>(r)
    /// of the source (identity when null).
    /// </summary>
    public Tensor Interleaved(in Tensor source, Func<int, int>? sourceRow = null)
    {
        var tensor = Allocate(source.Name, source.Type, source.Shape, TensorLayout.Interleaved);
        var from = source;
        InterleavedRows.Interleave(source.Name, source.Type, source.Rows, source.Columns, r => from.RowBytes(sourceRow?.Invoke(r) ?? r), tensor.Pointer);
        return tensor;
    }

    /// <summary>Frees a tensor this store allocated, which must not be used again; any other tensor is left alone.</summary>
    public void Free(in Tensor tensor)
    {
        if (!_blocks.Remove((nint)tensor.Pointer)) return;
        NativeMemory.AlignedFree(tensor.Pointer);
        Bytes -= tensor.ByteLength;
    }

    private Tensor Allocate(string name, DType type, long[] shape, TensorLayout layout = TensorLayout.Rows)
    {
        long count = 1;
        foreach (var d in shape) count = d >= 0 ? checked(count * d) : throw new ArgumentException($"{name}: negative dimension");
        var columns = shape.Length == 0 ? 1 : shape[^1];
        DTypes.ByteCount(type, columns); // each row must be whole blocks
        var length = layout == TensorLayout.Interleaved
            ? InterleavedRows.ByteCount(type, checked((int)shape[0]), checked((int)columns))
            : DTypes.ByteCount(type, count);
        var pointer = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(1, length), 64);
        _blocks.Add((nint)pointer);
        Bytes += length;
        return new Tensor(name, type, (long[])shape.Clone(), pointer, length, layout);
    }

    public void Dispose()
    {
        foreach (var block in _blocks) NativeMemory.AlignedFree((void*)block);
        _blocks.Clear();
    }
}
