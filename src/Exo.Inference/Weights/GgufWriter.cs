using System.Buffers.Binary;
using System.Text;

namespace Exo.Inference.Weights;

/// <summary>Fills one row of a tensor being written, as f32 values; the writer encodes it to the tensor's type.</summary>
public delegate void RowSource(int row, Span<float> values);

public static class RowWriter
{
    /// <summary>
    /// Writes a tensor of <paramref name="shape"/> (rows are the last dimension) encoded as <paramref name="type"/>,
    /// asking <paramref name="rows"/> for one row at a time, so a tensor of any size passes through two row buffers.
    /// </summary>
    public static void Write(Stream stream, DType type, long[] shape, RowSource rows)
    {
        var columns = checked((int)shape[^1]);
        var rowCount = checked((int)(shape.Aggregate(1L, (a, b) => a * b) / columns));
        var values = new float[columns];
        var encoded = new byte[DTypes.ByteCount(type, columns)];
        for (var r = 0; r < rowCount; r++)
        {
            rows(r, values);
            Quants.Quantize(type, values, encoded);
            stream.Write(encoded);
        }
    }
}

/// <summary>
/// Writes a GGUF v3 file: metadata and tensor infos first, then each tensor's data produced row by row, so a
/// multi-gigabyte file never has to be held in memory.
/// </summary>
public sealed class GgufWriter
{
    private readonly Dictionary<string, object> _metadata = new(StringComparer.Ordinal);
    private readonly List<(string Name, DType Type, long[] Shape, RowSource Rows)> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public uint Alignment { get; init; } = GgufFile.DefaultAlignment;

    /// <summary>Sets a metadata value: a uint, int, float, bool, string, ... or an array of one of them (object[] for nested arrays).</summary>
    public GgufWriter Set(string key, object value)
    {
        GgufTypes.Of(value);
        _metadata[key] = value;
        return this;
    }

    /// <summary>Adds a tensor (shape outermost first) whose rows <paramref name="rows"/> will produce when the file is written.</summary>
    public GgufWriter AddTensor(string name, DType type, long[] shape, RowSource rows)
    {
        if (!_names.Add(name)) throw new ArgumentException($"tensor '{name}' is added twice");
        if (shape.Length is 0 or > GgufFile.MaxDimensions || shape.Any(d => d <= 0))
            throw new ArgumentException($"tensor '{name}' has an invalid shape [{string.Join(", ", shape)}]");
        DTypes.ByteCount(type, shape[^1]); // rows must be whole blocks
        _tensors.Add((name, type, shape, rows));
        return this;
    }

    /// <summary>Total bytes of tensor data (without padding).</summary>
    public long TensorBytes => _tensors.Sum(t => DTypes.ByteCount(t.Type, t.Shape.Aggregate(1L, (a, b) => a * b)));

    /// <summary>Writes the file; <paramref name="progress"/> hears (tensor index, tensor count, name) before each tensor.</summary>
    public void Write(string path, Action<int, int, string>? progress = null, CancellationToken cancellationToken = default)
    {
        var temporary = path + ".partial";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            var output = new BinaryWriterLe(stream);
            output.UInt32(GgufFile.Magic);
            output.UInt32(3);
            output.UInt64((ulong)_tensors.Count);
            output.UInt64((ulong)_metadata.Count);
            foreach (var (key, value) in _metadata)
            {
                output.String(key);
                output.UInt32((uint)GgufTypes.Of(value));
                output.Value(value);
            }

            long offset = 0;
            foreach (var (name, type, shape, _) in _tensors)
            {
                output.String(name);
                output.UInt32((uint)shape.Length);
                for (var d = shape.Length - 1; d >= 0; d--) output.UInt64((ulong)shape[d]);
                output.UInt32(DTypes.ToGgml(type));
                output.UInt64((ulong)offset);
                offset = GgufFile.Align(offset + DTypes.ByteCount(type, shape.Aggregate(1L, (a, b) => a * b)), Alignment);
            }

            output.Pad(Alignment);
            for (var i = 0; i < _tensors.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var (name, type, shape, rows) = _tensors[i];
                progress?.Invoke(i, _tensors.Count, name);
                RowWriter.Write(stream, type, shape, rows);

                output.Pad(Alignment);
            }
        }

        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Little-endian primitives and GGUF strings and values onto a stream.</summary>
    private sealed class BinaryWriterLe(Stream stream)
    {
        private readonly byte[] _buffer = new byte[8];

        public void UInt32(uint value)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(_buffer, value);
            stream.Write(_buffer, 0, 4);
        }

        public void UInt64(ulong value)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(_buffer, value);
            stream.Write(_buffer, 0, 8);
        }

        public void String(string value)
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            UInt64((ulong)bytes.Length);
            stream.Write(bytes);
        }

        public void Pad(uint alignment)
        {
            var padding = GgufFile.Align(stream.Position, alignment) - stream.Position;
            for (var i = 0; i < padding; i++) stream.WriteByte(0);
        }

        public void Value(object value)
        {
            switch (value)
            {
                case byte v: stream.WriteByte(v); break;
                case sbyte v: stream.WriteByte((byte)v); break;
                case bool v: stream.WriteByte(v ? (byte)1 : (byte)0); break;
                case ushort v: BinaryPrimitives.WriteUInt16LittleEndian(_buffer, v); stream.Write(_buffer, 0, 2); break;
                case short v: BinaryPrimitives.WriteInt16LittleEndian(_buffer, v); stream.Write(_buffer, 0, 2); break;
                case uint v: UInt32(v); break;
                case int v: UInt32((uint)v); break;
                case float v: UInt32(BitConverter.SingleToUInt32Bits(v)); break;
                case ulong v: UInt64(v); break;
                case long v: UInt64((ulong)v); break;
                case double v: UInt64(BitConverter.DoubleToUInt64Bits(v)); break;
                case string v: String(v); break;
                case Array array:
                    var element = array.GetType().GetElementType()!;
                    UInt32((uint)(element == typeof(object) ? GgufType.Array : GgufTypes.Of(element)));
                    UInt64((ulong)array.Length);
                    foreach (var item in array) Value(item!);
                    break;
                default:
                    throw new ArgumentException($"{value.GetType().Name} is not a GGUF metadata type");
            }
        }
    }
}
