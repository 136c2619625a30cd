using System.Buffers.Binary;
using System.Text.Json;

namespace Exo.Inference.Weights;

/// <summary>
/// One memory-mapped .safetensors file: an 8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and [begin, end) byte offsets into the data that follows. Nothing in the header is trusted: every
/// offset and shape is checked against the file before a <see cref="Tensor"/> can point into it.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    // A header larger than this is not a model header but a corrupt or hostile file.
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    private readonly MappedFile _mapped;
    private readonly byte* _base;
    private readonly Dictionary<string, Entry> _entries;

    private readonly record struct Entry(DType Type, long[] Shape, long Begin, long End);

    private SafetensorsFile(string path, MappedFile mapped, long dataStart, Dictionary<string, Entry> entries)
    {
        Path = path;
        _mapped = mapped;
        _base = mapped.Pointer;
        DataStart = dataStart;
        _entries = entries;
    }

    public string Path { get; }
    public long DataStart { get; }

    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <summary>The names of the tensors the file holds, each one for <see cref="Get"/>.</summary>
    public IReadOnlyCollection<string> Names => _entries.Keys;

    public static SafetensorsFile Open(string path)
    {
        var mapped = MappedFile.Open(path, 8, "a safetensors file");
        try
        {
            var pointer = mapped.Pointer;
            var length = mapped.Length;
            var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(pointer, 8));
            if (headerLength > MaxHeaderBytes || (long)headerLength > length - 8)
            {
                throw new ModelFormatException(
                    $"{path}: header claims {headerLength} bytes but the file holds {length - 8} after the length prefix (truncated or not safetensors)");
            }

            var dataStart = 8 + (long)headerLength;
            var entries = ParseHeader(path, new ReadOnlySpan<byte>(pointer + 8, (int)headerLength), length - dataStart);
            return new SafetensorsFile(path, mapped, dataStart, entries);
        }
        catch
        {
            mapped.Dispose();
            throw;
        }
    }

    private static Dictionary<string, Entry> ParseHeader(string path, ReadOnlySpan<byte> header, long dataLength)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.ToArray());
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{path}: the header is not valid JSON ({e.Message})", e);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException($"{path}: the header is not a JSON object");

            var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__") continue;
                entries.Add(property.Name, ParseEntry(path, property.Name, property.Value, dataLength));
            }

            return entries;
        }
    }

    private static Entry ParseEntry(string path, string name, JsonElement element, long dataLength)
    {
        string Where() => $"{path}: tensor '{name}'";
        if (element.ValueKind != JsonValueKind.Object
            || !element.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String
            || !element.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array
            || !element.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array
            || offsetsElement.GetArrayLength() != 2)
        {
            throw new ModelFormatException($"{Where()} needs dtype, shape and two data_offsets");
        }

        var type = DTypes.ParseSafetensors(dtypeElement.GetString()!, name);
        var shape = new long[shapeElement.GetArrayLength()];
        long elements = 1;
        var i = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var size) || size < 0 || size > int.MaxValue)
                throw new ModelFormatException($"{Where()} has an invalid dimension in its shape");
            shape[i++] = size;
            elements = size == 0 ? 0 : elements > long.MaxValue / size ? throw new ModelFormatException($"{Where()}: shape overflows") : elements * size;
        }

        if (!offsetsElement[0].TryGetInt64(out var begin) || !offsetsElement[1].TryGetInt64(out var end))
            throw new ModelFormatException($"{Where()} has non-integer data_offsets");
        if (begin < 0 || end < begin || end > dataLength)
            throw new ModelFormatException($"{Where()} claims bytes [{begin}, {end}) but the data section holds {dataLength} (truncated file or lying header)");
        var expected = elements * DTypes.SizeOf(type);
        if (end - begin != expected)
            throw new ModelFormatException($"{Where()} spans {end - begin} bytes but {type}[{string.Join(", ", shape)}] needs {expected}");

        return new Entry(type, shape, begin, end);
    }

    /// <summary>The tensor called <paramref name="name"/>; a missing one is a clear error.</summary>
    public Tensor Get(string name)
    {
        if (!_entries.TryGetValue(name, out var e))
            throw new ModelFormatException($"{Path}: tensor '{name}' is missing");
        return new Tensor(name, e.Type, e.Shape, _base + DataStart + e.Begin, e.End - e.Begin);
    }

    public void Dispose() => _mapped.Dispose();
}
