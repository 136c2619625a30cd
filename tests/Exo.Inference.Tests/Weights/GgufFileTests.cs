using System.Buffers.Binary;
using Exo.Inference.Tests.Support;
using Exo.Inference.Weights;

namespace Exo.Inference.Tests.Weights;

public sealed class GgufFileTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static float Value(int row, int column) => MathF.Sin(row * 31 + column * 0.7f);

    /// <summary>A small file with metadata of every type and one tensor of each given type.</summary>
    private string Write(uint alignment = 32, params DType[] types)
    {
        var writer = new GgufWriter { Alignment = alignment }
            .Set("u8", (byte)200).Set("i8", (sbyte)-5).Set("u16", (ushort)60000).Set("i16", (short)-300)
            .Set("u32", 4_000_000_000u).Set("i32", -7).Set("f32", 1.5f).Set("bool", true).Set("str", "héllo")
            .Set("u64", ulong.MaxValue).Set("i64", long.MinValue).Set("f64", Math.PI)
            .Set("strings", new[] { "a", "", "ü" }).Set("floats", new[] { 1f, -2f }).Set("ints", new[] { 1, 2, 3 })
            .Set("nested", new object[] { new[] { 1u, 2u }, new[] { "x" } });
        if (alignment != 32) writer.Set("general.alignment", alignment);
        foreach (var type in types)
            writer.AddTensor($"t.{type}", type, [3, 256], (row, values) => { for (var i = 0; i < values.Length; i++) values[i] = Value(row, i); });
        var path = _temp.File($"m-{Guid.NewGuid():N}.gguf");
        writer.Write(path);
        return path;
    }

    [Fact]
    public void MetadataOfEveryTypeRoundTrips()
    {
        using var file = GgufFile.Open(Write());
        var m = file.Metadata;
        Assert.Equal(3u, file.Version);
        Assert.Equal((byte)200, m.Values["u8"]);
        Assert.Equal((sbyte)-5, m.Values["i8"]);
        Assert.Equal((ushort)60000, m.Values["u16"]);
        Assert.Equal((short)-300, m.Values["i16"]);
        Assert.Equal(4_000_000_000u, m.UInt32("u32"));
        Assert.Equal(-7, m.Integer("i32"));
        Assert.Equal(1.5, m.Float("f32"));
        Assert.True(m.OptionalBool("bool"));
        Assert.Equal("héllo", m.String("str"));
        Assert.Equal(ulong.MaxValue, m.Values["u64"]);
        Assert.Equal(long.MinValue, m.Integer("i64"));
        Assert.Equal(Math.PI, m.Float("f64"));
        Assert.Equal(["a", "", "ü"], m.StringArray("strings"));
        Assert.Equal([1f, -2f], m.FloatArray("floats"));
        Assert.Equal([1, 2, 3], m.IntArray("ints"));
        var nested = Assert.IsType<object[]>(m.Values["nested"]);
        Assert.Equal([1u, 2u], Assert.IsType<uint[]>(nested[0]));
        Assert.Equal(["x"], Assert.IsType<string[]>(nested[1]));
        Assert.Throws<ModelFormatException>(() => m.String("u32"));
        Assert.Throws<ModelFormatException>(() => m.Int("i32"));
        Assert.Contains("missing", Assert.Throws<ModelFormatException>(() => m.String("absent")).Message);
    }

    [Theory]
    [InlineData(32u)]
    [InlineData(64u)]
    public void TensorsOfEveryTypeRoundTripAtTheirAlignment(uint alignment)
    {
        var types = Enum.GetValues<DType>();
        using var file = GgufFile.Open(Write(alignment, types));
        Assert.Equal(0, file.DataStart % alignment);
        var row = new float[256];
        foreach (var type in types)
        {
            var tensor = file.Get($"t.{type}");
            Assert.Equal(type, tensor.Type);
            Assert.Equal([3L, 256L], tensor.Shape);
            Assert.Equal(0, file.TensorInfos.Single(t => t.Name == tensor.Name).Offset % alignment);
            var expected = Enumerable.Range(0, 256).Select(i => Value(2, i)).ToArray();
            var encoded = new byte[DTypes.ByteCount(type, 256)];
            Quants.Quantize(type, expected, encoded);
            Assert.Equal(encoded, tensor.RowBytes(2).ToArray());
            tensor.ReadRow(2, row);
            Assert.Equal(expected[7], row[7], type == DType.F32 ? 0 : 0.2);
        }
    }

    [Fact]
    public void Version2FilesAreRead()
    {
        var bytes = File.ReadAllBytes(Write(32, DType.F32));
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), 2);
        using var file = GgufFile.Open(Save(bytes));
        Assert.Equal(2u, file.Version);
    }

    private string Save(byte[] bytes)
    {
        var path = _temp.File($"bad-{Guid.NewGuid():N}.gguf");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private string Fails(byte[] bytes) => Assert.Throws<ModelFormatException>(() => GgufFile.Open(Save(bytes)).Dispose()).Message;

    /// <summary>A hand-built header: magic, version, counts, then the given body.</summary>
    private static byte[] Header(uint version, ulong tensors, ulong kvs, params byte[][] body)
    {
        var head = new byte[24];
        BinaryPrimitives.WriteUInt32LittleEndian(head, GgufFile.Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(4), version);
        BinaryPrimitives.WriteUInt64LittleEndian(head.AsSpan(8), tensors);
        BinaryPrimitives.WriteUInt64LittleEndian(head.AsSpan(16), kvs);
        return [.. head, .. body.SelectMany(b => b), .. new byte[64]];
    }

    private static byte[] U32(uint v) => BitConverter.GetBytes(v);
    private static byte[] U64(ulong v) => BitConverter.GetBytes(v);
    private static byte[] Str(string s) => [.. U64((ulong)s.Length), .. System.Text.Encoding.UTF8.GetBytes(s)];

    private static byte[] TensorInfo(string name, uint ggmlType, ulong offset, params ulong[] dims) =>
        [.. Str(name), .. U32((uint)dims.Length), .. dims.SelectMany(U64), .. U32(ggmlType), .. U64(offset)];

    [Fact]
    public void MalformedHeadersAreClearErrors()
    {
        Assert.Contains("bad magic", Fails([.. "GGML"u8.ToArray(), .. new byte[40]]));
        Assert.Contains("version 1", Fails(Header(1, 0, 0)));
        Assert.Contains("big-endian", Fails(Header(0x03000000, 0, 0)));
        Assert.Contains("cannot fit", Fails(Header(3, ulong.MaxValue, 0)));
        Assert.Contains("cannot fit", Fails(Header(3, 0, 1UL << 40)));
        Assert.Contains("runs past the end", Fails(Header(3, 0, 1, U64(1UL << 50))));
        Assert.Contains("unknown value type", Fails(Header(3, 0, 1, Str("k"), U32(99))));
        Assert.Contains("array of unknown type", Fails(Header(3, 0, 1, Str("k"), U32(9), U32(77), U64(1))));
        Assert.Contains("cannot fit", Fails(Header(3, 0, 1, Str("k"), U32(9), U32(4), U64(1UL << 33))));
        Assert.Contains("bool byte", Fails(Header(3, 0, 1, Str("k"), U32(7), [2])));
        Assert.Contains("appears twice", Fails(Header(3, 0, 2, Str("k"), U32(4), U32(1), Str("k"), U32(4), U32(2))));
        Assert.Contains("power of two", Fails(Header(3, 0, 1, Str("general.alignment"), U32(4), U32(24))));
        Assert.Contains("too short", Fails(new byte[10]));
    }

    [Fact]
    public void LyingTensorInfosAreClearErrors()
    {
        Assert.Contains("dimensions", Fails(Header(3, 1, 0, TensorInfo("t", 0, 0, 1, 1, 1, 1, 1))));
        Assert.Contains("type 6", Fails(Header(3, 1, 0, TensorInfo("t", 6, 0, 32))));
        Assert.Contains("whole blocks", Fails(Header(3, 1, 0, TensorInfo("t", 8, 0, 48))));
        Assert.Contains("alignment", Fails(Header(3, 1, 0, TensorInfo("t", 0, 4, 2))));
        Assert.Contains("claims bytes", Fails(Header(3, 1, 0, TensorInfo("t", 0, 0, 1000))));
        Assert.Contains("appears twice", Fails(Header(3, 2, 0, TensorInfo("t", 0, 0, 1), TensorInfo("t", 0, 0, 1))));
        Assert.Contains("too large", Fails(Header(3, 1, 0, TensorInfo("t", 0, 0, 1UL << 40))));
    }

    [Fact]
    public void TruncatedDataIsAnError()
    {
        var bytes = File.ReadAllBytes(Write(32, DType.Q8_0, DType.F16));
        Assert.Contains("claims bytes", Fails(bytes[..^40]));
    }
}
