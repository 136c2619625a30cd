using System.Buffers.Binary;
using System.Text.Json.Nodes;
using Exo.Inference.Weights;

namespace Exo.Inference.Conversion;

/// <summary>Writes a .safetensors file whose tensors are produced row by row (the header is known from the shapes up front).</summary>
internal static class SafetensorsStream
{
    public static void Write(string path, DType type, IReadOnlyList<(string Name, long[] Shape, RowSource Rows)> tensors,
        Action<int, int, string>? progress, CancellationToken cancellationToken)
    {
        var header = new JsonObject();
        long offset = 0;
        var dtype = type.ToString();
        foreach (var (name, shape, _) in tensors)
        {
            var bytes = DTypes.ByteCount(type, shape.Aggregate(1L, (a, b) => a * b));
            header[name] = new JsonObject { ["dtype"] = dtype, ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()), ["data_offsets"] = new JsonArray(offset, offset + bytes) };
            offset += bytes;
        }

        var headerBytes = System.Text.Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = (headerBytes.Length + 7) / 8 * 8; // keep the data 8-byte aligned; spaces are valid JSON padding
        var temporary = path + ".partial";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            var length = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
            stream.Write(length);
            stream.Write(headerBytes);
            for (var i = headerBytes.Length; i < padded; i++) stream.WriteByte((byte)' ');
            for (var t = 0; t < tensors.Count; t++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var (name, shape, rows) = tensors[t];
                progress?.Invoke(t, tensors.Count, name);
                RowWriter.Write(stream, type, shape, rows);
            }
        }

        File.Move(temporary, path, overwrite: true);
    }
}
