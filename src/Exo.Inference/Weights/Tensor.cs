namespace Exo.Inference.Weights;

/// <summary>
/// A read-only view of a tensor's bytes in a memory-mapped weight file. Rows are the outer dimension:
/// a linear layer's weight [out, in] has <see cref="Rows"/> = out and <see cref="Columns"/> = in.
/// </summary>
public readonly unsafe struct Tensor
{
    private readonly byte* _data;

    public Tensor(string name, DType type, long[] shape, byte* data, long byteLength, TensorLayout layout = TensorLayout.Rows)
    {
        Name = name;
        Type = type;
        Shape = shape;
        _data = data;
        ByteLength = byteLength;
        Layout = layout;
    }

    public string Name { get; }
    public DType Type { get; }
    public long[] Shape { get; }
    public long ByteLength { get; }

    /// <summary>How the bytes are ordered; kernels that read rows in place need <see cref="TensorLayout.Rows"/>.</summary>
    public TensorLayout Layout { get; }

    /// <summary>
    /// Whether every value is known to be finite (no infinity or NaN), as <see cref="WithFiniteScan"/> found; kernels
    /// then convert f16 values without special-value handling. False means not, or not scanned.
    /// </summary>
    public bool Finite { get; init; }

    /// <summary>The first byte; for kernels that read blocks in place. Valid while the owning file or store is open.</summary>
    public byte* Pointer => _data;

    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (var d in Shape) n *= d;
            return n;
        }
    }

    public int Rows => Shape.Length <= 1 ? 1 : checked((int)Shape[0]);

    public int Columns => Shape.Length <= 1 ? checked((int)ElementCount) : checked((int)(ElementCount / Shape[0]));

    /// <summary>Bytes of one row: whole blocks for quantized types (file readers reject shapes that are not).</summary>
    public long RowByteCount => DTypes.ByteCount(Type, Columns);

    /// <summary>Raw bytes of one row, in place; only for the row layout.</summary>
    public ReadOnlySpan<byte> RowBytes(int row)
    {
        var rowBytes = RowByteCount;
        if ((uint)row >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(row));
        if (Layout != TensorLayout.Rows) throw new InvalidOperationException($"{Name} is {Layout}: its rows are not contiguous");
        return new ReadOnlySpan<byte>(_data + row * rowBytes, checked((int)rowBytes));
    }

    private const int StackRowBytes = 32 * 1024;

    /// <summary>Converts one row to f32 (dequantizing block types), whatever the layout.</summary>
    public void ReadRow(int row, Span<float> destination)
    {
        if (destination.Length != Columns) throw new ArgumentException($"destination holds {destination.Length}, row has {Columns}");
        if (Layout == TensorLayout.Rows)
        {
            Quants.Dequantize(Type, RowBytes(row), destination);
            return;
        }

        if ((uint)row >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(row));
        // The row is gathered into row-layout blocks first, on the stack unless it is huge.
        var bytes = RowByteCount <= StackRowBytes ? stackalloc byte[(int)RowByteCount] : new byte[RowByteCount];
        InterleavedRows.CopyRow(Type, _data, Columns, row, bytes);
        Quants.Dequantize(Type, bytes, destination);
    }

    /// <summary>Reads a 1-D tensor (norm weights, biases) into a new f32 array; done once at load.</summary>
    public float[] ToArray()
    {
        var result = new float[checked((int)ElementCount)];
        Quants.Dequantize(Type, new ReadOnlySpan<byte>(_data, checked((int)ByteLength)), result);
        return result;
    }

    /// <summary>
    /// This tensor with <see cref="Finite"/> set by a scan of its values, done once at load. Only f16 kernels gain from
    /// knowing it, so other types come back unscanned.
    /// </summary>
    public Tensor WithFiniteScan() => Type == DType.F16 ? this with { Finite = FiniteScan.Halves((ushort*)_data, ByteLength / sizeof(ushort)) } : this;

    public override string ToString() => $"{Name} {Type}[{string.Join(", ", Shape)}]{(Layout == TensorLayout.Rows ? "" : " " + Layout)}";
}
