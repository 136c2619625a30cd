using System.Buffers.Binary;
using System.Text;

namespace Exo.Inference.Weights;

/// <summary>
/// One memory-mapped GGUF file (versions 2 and 3, little-endian): a header, typed metadata key/values, tensor infos,
/// then the tensor data at an aligned offset. Nothing in the file is trusted: every count, length, shape, type and
/// offset is checked against the bytes that are actually there before a <see cref="Tensor"/> can point into it.
/// </summary>
public sealed unsafe class GgufFile : IWeightSource
{
    public const uint Magic = 0x46554747; // "GGUF" read as a little-endian uint32
    public const uint DefaultAlignment = 32;
    public const int MaxDimensions = 4;

    private readonly MappedFile _mapped;
    private readonly byte* _base;
    private readonly Dictionary<string, GgufTensorInfo> _tensors;

    private GgufFile(string path, MappedFile mapped, uint version, GgufMetadata metadata, List<GgufTensorInfo> tensors, long dataStart)
    {
        Path = path;
        _mapped = mapped;
        _base = mapped.Pointer;
        Version = version;
        Metadata = metadata;
        TensorInfos = tensors;
        _tensors = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        DataStart = dataStart;
    }

    public string Path { get; }
    public uint Version { get; }
    public GgufMetadata Metadata { get; }
    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> TensorInfos { get; }
    public long DataStart { get; }

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public IReadOnlyCollection<string> OpenedFiles => [Path];

    /// <summary>Every tensor lies in a read-only file mapping, whose pages can be dropped and read back.</summary>
    public void Release(in Tensor tensor) => PageRelease.Release(tensor.Pointer, tensor.ByteLength);

    public static GgufFile Open(string path)
    {
        var mapped = MappedFile.Open(path, 24, "a GGUF file");
        try
        {
            // The header, metadata and tensor infos must lie in the first 2 GiB: far more than any real file uses.
            var reader = new Reader(path, new ReadOnlySpan<byte>(mapped.Pointer, (int)Math.Min(mapped.Length, int.MaxValue)));
            var (version, metadata, infos, dataStart) = Parse(ref reader, path, mapped.Length);
            return new GgufFile(path, mapped, version, metadata, infos, dataStart);
        }
        catch
        {
            mapped.Dispose();
            throw;
        }
    }

    private static (uint, GgufMetadata, List<GgufTensorInfo>, long) Parse(ref Reader reader, string path, long fileLength)
    {
        if (reader.UInt32() != Magic) throw new ModelFormatException($"{path}: not a GGUF file (bad magic)");
        var version = reader.UInt32();
        if (version is not (2 or 3))
        {
            var hint = BinaryPrimitives.ReverseEndianness(version) is 2 or 3 ? " (a big-endian file, which is not supported)" : "";
            throw new ModelFormatException($"{path}: GGUF version {version} is not supported (2 and 3 are){hint}");
        }

        // Every tensor info takes at least 8 + 4 + 4 + 8 bytes and every key/value at least 8 + 4 + 1.
        var tensorCount = reader.Count(24, "tensor count");
        var kvCount = reader.Count(13, "metadata count");

        var values = new Dictionary<string, object>(StringComparer.Ordinal);
        for (long i = 0; i < kvCount; i++)
        {
            var key = reader.String();
            var type = (GgufType)reader.UInt32();
            if (!values.TryAdd(key, reader.Value(type, key, depth: 0)))
                throw new ModelFormatException($"{path}: metadata key '{key}' appears twice");
        }

        var metadata = new GgufMetadata(values, path);
        var alignment = metadata.Contains("general.alignment") ? metadata.UInt32("general.alignment") : DefaultAlignment;
        if (alignment == 0 || (alignment & (alignment - 1)) != 0)
            throw new ModelFormatException($"{path}: general.alignment {alignment} is not a power of two");

        var raw = new List<(string Name, long[] Dims, DType Type, ulong Offset)>((int)tensorCount);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (long i = 0; i < tensorCount; i++)
        {
            var name = reader.String();
            if (!names.Add(name)) throw new ModelFormatException($"{path}: tensor '{name}' appears twice");
            var dimensions = reader.UInt32();
            if (dimensions is 0 or > MaxDimensions)
                throw new ModelFormatException($"{path}: tensor '{name}' has {dimensions} dimensions (1 to {MaxDimensions} allowed)");
            var dims = new long[dimensions];
            for (var d = 0; d < dimensions; d++)
            {
                var size = reader.UInt64();
                dims[d] = size <= int.MaxValue ? (long)size : throw new ModelFormatException($"{path}: tensor '{name}' has dimension {size}, too large");
            }

            var ggmlType = reader.UInt32();
            DType type;
            try
            {
                type = DTypes.FromGgml(ggmlType);
            }
            catch (ModelFormatException e)
            {
                throw new ModelFormatException($"{path}: tensor '{name}': {e.Message}", e);
            }

            raw.Add((name, dims, type, reader.UInt64()));
        }

        var dataStart = Align(reader.Position, alignment);
        if (dataStart > fileLength) throw new ModelFormatException($"{path}: the tensor data would start at {dataStart}, past the end of the {fileLength}-byte file (truncated?)");
        var dataLength = fileLength - dataStart;

        var infos = new List<GgufTensorInfo>(raw.Count);
        foreach (var (name, dims, type, offset) in raw)
        {
            string Where() => $"{path}: tensor '{name}' {type}[{string.Join(", ", dims)}]";
            if (dims[0] % DTypes.BlockSize(type) != 0)
                throw new ModelFormatException($"{Where()}: rows of {dims[0]} values are not whole blocks of {DTypes.BlockSize(type)}");
            long count = 1;
            foreach (var d in dims)
                count = d == 0 ? 0 : count > long.MaxValue / d ? throw new ModelFormatException($"{Where()}: the shape overflows") : count * d;
            var bytes = DTypes.ByteCount(type, count);
            if (offset % alignment != 0) throw new ModelFormatException($"{Where()}: offset {offset} is not a multiple of the alignment {alignment}");
            if (offset > (ulong)dataLength || bytes > dataLength - (long)offset)
                throw new ModelFormatException($"{Where()} claims bytes [{offset}, {offset + (ulong)bytes}) but the data section holds {dataLength} (truncated file or lying header)");
            // GGML lists the fastest-varying dimension first; Tensor shapes are outermost first.
            var shape = dims.Reverse().ToArray();
            infos.Add(new GgufTensorInfo(name, type, shape, (long)offset, bytes));
        }

        return (version, metadata, infos, dataStart);
    }

    internal static long Align(long position, uint alignment) => (position + alignment - 1) / alignment * alignment;

    /// <summary>The tensor called <paramref name="name"/>; a missing one is a clear error.</summary>
    public Tensor Get(string name)
    {
        if (!_tensors.TryGetValue(name, out var t)) throw new ModelFormatException($"{Path}: tensor '{name}' is missing");
        return new Tensor(name, t.Type, t.Shape, _base + DataStart + t.Offset, t.ByteLength);
    }

    public void Dispose() => _mapped.Dispose();

    /// <summary>A bounds-checked cursor over the header bytes.</summary>
    private ref struct Reader(string path, ReadOnlySpan<byte> bytes)
    {
        private const int MaxDepth = 8;
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _position;

        public readonly long Position => _position;

        private ReadOnlySpan<byte> Take(long count, string what)
        {
            if (count < 0 || count > _bytes.Length - _position)
                throw new ModelFormatException($"{path}: {what} needs {count} bytes at offset {_position} but the header ends at {_bytes.Length} (truncated or corrupt)");
            var span = _bytes.Slice(_position, (int)count);
            _position += (int)count;
            return span;
        }

        public uint UInt32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, "a uint32"));
        public ulong UInt64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, "a uint64"));

        /// <summary>A count of items each at least <paramref name="minItemBytes"/> long, checked against what is left.</summary>
        public long Count(int minItemBytes, string what)
        {
            var count = UInt64();
            if (count > (ulong)((_bytes.Length - _position) / minItemBytes))
                throw new ModelFormatException($"{path}: {what} {count} cannot fit in the {_bytes.Length - _position} bytes left (corrupt)");
            return (long)count;
        }

        public string String()
        {
            var length = UInt64();
            if (length > (ulong)(_bytes.Length - _position))
                throw new ModelFormatException($"{path}: a string of {length} bytes at offset {_position} runs past the end (truncated or corrupt)");
            return Encoding.UTF8.GetString(Take((long)length, "a string"));
        }

        public object Value(GgufType type, string key, int depth) => type switch
        {
            GgufType.UInt8 => Take(1, key)[0],
            GgufType.Int8 => (sbyte)Take(1, key)[0],
            GgufType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, key)),
            GgufType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(Take(2, key)),
            GgufType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, key)),
            GgufType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(Take(4, key)),
            GgufType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(Take(4, key)),
            GgufType.Bool => Take(1, key)[0] switch
            {
                0 => false,
                1 => true,
                var b => throw new ModelFormatException($"{path}: metadata '{key}' holds bool byte {b}"),
            },
            GgufType.String => String(),
            GgufType.Array => Array(key, depth),
            GgufType.UInt64 => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, key)),
            GgufType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(Take(8, key)),
            GgufType.Float64 => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, key)),
            _ => throw new ModelFormatException($"{path}: metadata '{key}' has unknown value type {(uint)type}"),
        };

        private object Array(string key, int depth)
        {
            if (depth >= MaxDepth) throw new ModelFormatException($"{path}: metadata '{key}' nests arrays more than {MaxDepth} deep");
            var type = (GgufType)UInt32();
            var count = (int)Math.Min(int.MaxValue, Count(GgufTypes.MinBytes(type, path, key), $"array length of '{key}'"));
            return type switch
            {
                GgufType.UInt8 => Take(count, key).ToArray(),
                GgufType.Int8 => Fill<sbyte>(count, type, key, depth),
                GgufType.UInt16 => Fill<ushort>(count, type, key, depth),
                GgufType.Int16 => Fill<short>(count, type, key, depth),
                GgufType.UInt32 => Fill<uint>(count, type, key, depth),
                GgufType.Int32 => Fill<int>(count, type, key, depth),
                GgufType.Float32 => Fill<float>(count, type, key, depth),
                GgufType.Bool => Fill<bool>(count, type, key, depth),
                GgufType.String => Fill<string>(count, type, key, depth),
                GgufType.UInt64 => Fill<ulong>(count, type, key, depth),
                GgufType.Int64 => Fill<long>(count, type, key, depth),
                GgufType.Float64 => Fill<double>(count, type, key, depth),
                _ => Fill<object>(count, type, key, depth),
            };
        }

        private T[] Fill<T>(int count, GgufType type, string key, int depth)
        {
            var result = new T[count];
            for (var i = 0; i < count; i++) result[i] = (T)Value(type, key, depth + 1);
            return result;
        }
    }
}

/// <summary>Where one tensor lies in a GGUF file's data section; <see cref="Shape"/> is outermost first.</summary>
public sealed record GgufTensorInfo(string Name, DType Type, long[] Shape, long Offset, long ByteLength);

/// <summary>GGUF metadata value types.</summary>
public enum GgufType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

internal static class GgufTypes
{
    /// <summary>The fewest bytes one value of a type can take, to bound an array's claimed length by the bytes left.</summary>
    public static int MinBytes(GgufType type, string path, string key) => type switch
    {
        GgufType.UInt8 or GgufType.Int8 or GgufType.Bool => 1,
        GgufType.UInt16 or GgufType.Int16 => 2,
        GgufType.UInt32 or GgufType.Int32 or GgufType.Float32 => 4,
        GgufType.UInt64 or GgufType.Int64 or GgufType.Float64 or GgufType.String => 8,
        GgufType.Array => 12,
        _ => throw new ModelFormatException($"{path}: metadata '{key}' is an array of unknown type {(uint)type}"),
    };

    /// <summary>The GGUF type a metadata value is written as, from its CLR type (arrays: T[]; nested arrays: object[]).</summary>
    public static GgufType Of(object value) => Of(value.GetType());

    public static GgufType Of(Type type) =>
        type == typeof(byte) ? GgufType.UInt8
        : type == typeof(sbyte) ? GgufType.Int8
        : type == typeof(ushort) ? GgufType.UInt16
        : type == typeof(short) ? GgufType.Int16
        : type == typeof(uint) ? GgufType.UInt32
        : type == typeof(int) ? GgufType.Int32
        : type == typeof(float) ? GgufType.Float32
        : type == typeof(bool) ? GgufType.Bool
        : type == typeof(string) ? GgufType.String
        : type == typeof(ulong) ? GgufType.UInt64
        : type == typeof(long) ? GgufType.Int64
        : type == typeof(double) ? GgufType.Float64
        : type.IsArray && (type.GetElementType() == typeof(object) || Of(type.GetElementType()!) != GgufType.Array) ? GgufType.Array
        : throw new ArgumentException($"{type.Name} is not a GGUF metadata type");
}
