using System.Buffers.Binary;
using System.Text.Json;

namespace Exo.Hub;

/// <summary>One tensor of a safetensors file: dtype, shape and its [Begin, End) bytes within the data section.</summary>
public sealed record SafetensorsTensor(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long Length => End - Begin;
}

/// <summary>
/// A safetensors header (8-byte little-endian length, then JSON naming each tensor's dtype, shape and data offsets),
/// read from bytes that came from elsewhere: its length is bounded, and every tensor's offsets are checked against the
/// file's size, its dtype and shape, and the other tensors before anything is fetched by them.
/// </summary>
public sealed class SafetensorsHeader
{
    /// <summary>A header beyond this is not a model's but a corrupt or hostile file's.</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    private SafetensorsHeader(long dataStart, IReadOnlyList<SafetensorsTensor> tensors, string? metadata)
    {
        DataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>Where the data section starts: 8 + the header's length.</summary>
    public long DataStart { get; }

    /// <summary>The tensors in the order of their data.</summary>
    public IReadOnlyList<SafetensorsTensor> Tensors { get; }

    /// <summary>The <c>__metadata__</c> object as JSON text, kept as it was.</summary>
    public string? Metadata { get; }

    /// <summary>The header's length from the file's first 8 bytes, checked against the bound and the file's size.</summary>
    public static int HeaderLength(ReadOnlySpan<byte> prefix, long fileSize, string what)
    {
        var length = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (length > MaxHeaderBytes || (long)length > fileSize - 8 || length < 2)
            throw new FormatException($"{what}: a safetensors header of {length} bytes does not fit a {fileSize}-byte file (at most {MaxHeaderBytes}): not safetensors, or corrupt");
        return (int)length;
    }

    public static SafetensorsHeader Parse(ReadOnlySpan<byte> json, long fileSize, string what)
    {
        var dataStart = 8L + json.Length;
        var dataLength = fileSize - dataStart;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException e)
        {
            throw new FormatException($"{what}: the safetensors header is not JSON ({e.Message})", e);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw new FormatException($"{what}: the safetensors header is not a JSON object");
            string? metadata = null;
            var tensors = new List<SafetensorsTensor>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!names.Add(property.Name)) throw new FormatException($"{what}: '{property.Name}' appears twice in the header");
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object || property.Value.EnumerateObject().Any(p => p.Value.ValueKind != JsonValueKind.String))
                        throw new FormatException($"{what}: __metadata__ must map strings to strings");
                    metadata = property.Value.GetRawText();
                    continue;
                }

                tensors.Add(ParseTensor(property.Name, property.Value, dataLength, what));
            }

            tensors.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            for (var i = 1; i < tensors.Count; i++)
            {
                if (tensors[i].Begin < tensors[i - 1].End)
                    throw new FormatException($"{what}: tensors '{tensors[i - 1].Name}' and '{tensors[i].Name}' overlap");
            }

            return new SafetensorsHeader(dataStart, tensors, metadata);
        }
    }

    private static SafetensorsTensor ParseTensor(string name, JsonElement element, long dataLength, string what)
    {
        if (element.ValueKind != JsonValueKind.Object
            || !element.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String
            || !element.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array
            || !element.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw new FormatException($"{what}: tensor '{name}' needs dtype, shape and two data_offsets");
        var size = DTypeBytes(dtype.GetString()!) ?? throw new FormatException($"{what}: tensor '{name}' has an unknown dtype '{dtype.GetString()}'");

        var shape = new long[shapeElement.GetArrayLength()];
        var elements = 1L;
        var i = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (!d.TryGetInt64(out var n) || n < 0) throw new FormatException($"{what}: tensor '{name}' has an invalid dimension");
            shape[i++] = n;
            elements = n == 0 ? 0 : elements > long.MaxValue / n / size ? throw new FormatException($"{what}: tensor '{name}''s shape overflows") : elements * n;
        }

        if (!offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end) || begin < 0 || end < begin || end > dataLength)
            throw new FormatException($"{what}: tensor '{name}' claims bytes outside the file's {dataLength}-byte data section");
        if (end - begin != elements * size)
            throw new FormatException($"{what}: tensor '{name}' spans {end - begin} bytes but {dtype.GetString()}[{string.Join(", ", shape)}] needs {elements * size}");
        return new SafetensorsTensor(name, dtype.GetString()!, shape, begin, end);
    }

    private static int? DTypeBytes(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" or "F8_E8M0" => 1,
        _ => null,
    };

    /// <summary>
    /// The 8-byte length and header of a file that holds <paramref name="tensors"/> (in this order, their data packed
    /// one after another) and this header's metadata, padded with spaces to a multiple of 8 bytes as safetensors writes it.
    /// </summary>
    public byte[] Write(IReadOnlyList<SafetensorsTensor> tensors)
    {
        using var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            if (Metadata is not null)
            {
                writer.WritePropertyName("__metadata__");
                writer.WriteRawValue(Metadata);
            }

            long offset = 0;
            foreach (var tensor in tensors)
            {
                writer.WriteStartObject(tensor.Name);
                writer.WriteString("dtype", tensor.DType);
                writer.WriteStartArray("shape");
                foreach (var d in tensor.Shape) writer.WriteNumberValue(d);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + tensor.Length);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += tensor.Length;
            }

            writer.WriteEndObject();
        }

        var padded = (json.Length + 7) / 8 * 8;
        var bytes = new byte[8 + padded];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)padded);
        json.GetBuffer().AsSpan(0, (int)json.Length).CopyTo(bytes.AsSpan(8));
        bytes.AsSpan(8 + (int)json.Length).Fill((byte)' ');
        return bytes;
    }

    /// <summary>The header of a local file, for checking what an earlier run wrote; null when it is not a readable safetensors file.</summary>
    public static SafetensorsHeader? TryRead(string path)
    {
        try
        {
            using var file = File.OpenRead(path);
            Span<byte> prefix = stackalloc byte[8];
            file.ReadExactly(prefix);
            var json = new byte[HeaderLength(prefix, file.Length, path)];
            file.ReadExactly(json);
            return Parse(json, file.Length, path);
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
