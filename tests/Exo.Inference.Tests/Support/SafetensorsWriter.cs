using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Exo.Inference.Weights;

namespace Exo.Inference.Tests.Support;

/// <summary>Writes safetensors files for tests, including deliberately broken ones.</summary>
public sealed class SafetensorsWriter
{
    private readonly List<(string Name, string DType, long[] Shape, byte[] Data)> _tensors = [];

    public SafetensorsWriter Add(string name, string dtype, long[] shape, byte[] data)
    {
        _tensors.Add((name, dtype, shape, data));
        return this;
    }

    public SafetensorsWriter AddF32(string name, long[] shape, float[] values)
    {
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return Add(name, "F32", shape, bytes);
    }

    /// <summary>Copies tensors from an existing file, as stored.</summary>
    public SafetensorsWriter CopyFrom(WeightFolder folder, IEnumerable<string> names)
    {
        foreach (var name in names)
        {
            var tensor = folder.Get(name);
            var bytes = new byte[tensor.ByteLength];
            for (var r = 0; r < tensor.Rows; r++) tensor.RowBytes(r).CopyTo(bytes.AsSpan((int)(r * (tensor.ByteLength / tensor.Rows))));
            Add(name, tensor.Type.ToString(), tensor.Shape, bytes);
        }

        return this;
    }

    /// <summary>The header as JSON text; <paramref name="lie"/> may rewrite each entry's offsets to test validation.</summary>
    public string Header(Func<string, (long Begin, long End), (long Begin, long End)>? lie = null)
    {
        var header = new Dictionary<string, object> { ["__metadata__"] = new Dictionary<string, string> { ["format"] = "pt" } };
        long offset = 0;
        foreach (var (name, dtype, shape, data) in _tensors)
        {
            var offsets = (offset, offset + data.Length);
            if (lie is not null) offsets = lie(name, offsets);
            header[name] = new { dtype, shape, data_offsets = new[] { offsets.Item1, offsets.Item2 } };
            offset += data.Length;
        }

        return JsonSerializer.Serialize(header);
    }

    public byte[] ToBytes(string? header = null)
    {
        var headerBytes = Encoding.UTF8.GetBytes(header ?? Header());
        using var stream = new MemoryStream();
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)headerBytes.Length);
        stream.Write(length);
        stream.Write(headerBytes);
        foreach (var tensor in _tensors) stream.Write(tensor.Data);
        return stream.ToArray();
    }

    public void Save(string path, string? header = null) => File.WriteAllBytes(path, ToBytes(header));
}
