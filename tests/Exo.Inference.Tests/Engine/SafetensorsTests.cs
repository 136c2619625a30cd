using System.Text.Json;
using Exo.Inference.Tests.Support;
using Exo.Inference.Weights;

namespace Exo.Inference.Tests.Engine;

public sealed class SafetensorsTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static SafetensorsWriter TwoTensors() => new SafetensorsWriter()
        .AddF32("a", [2, 3], [1, 2, 3, 4, 5, 6])
        .Add("b", "BF16", [2], [0x80, 0x3F, 0x00, 0xC0]); // bf16 1.0, -2.0

    [Fact]
    public void ReadsRowsOfEveryDType()
    {
        var path = _temp.File("ok.safetensors");
        var half = new byte[4];
        BitConverter.TryWriteBytes(half.AsSpan(0), (Half)0.5f);
        BitConverter.TryWriteBytes(half.AsSpan(2), (Half)(-3f));
        TwoTensors().Add("c", "F16", [1, 2], half).Save(path);

        using var file = SafetensorsFile.Open(path);
        var row = new float[3];
        file.Get("a").ReadRow(1, row);
        Assert.Equal([4f, 5f, 6f], row);
        Assert.Equal([1f, -2f], file.Get("b").ToArray());
        Assert.Equal([0.5f, -3f], file.Get("c").ToArray());
        Assert.Equal(2, file.Get("a").Rows);
        Assert.Equal(3, file.Get("a").Columns);
    }

    private ModelFormatException OpenFails(byte[] bytes)
    {
        var path = _temp.File($"bad-{Guid.NewGuid():N}.safetensors");
        File.WriteAllBytes(path, bytes);
        return Assert.Throws<ModelFormatException>(() => SafetensorsFile.Open(path).Dispose());
    }

    [Fact]
    public void SymlinkedFilesAreMeasuredAtTheirTarget()
    {
        TwoTensors().Save(_temp.File("blob"));
        File.CreateSymbolicLink(_temp.File("model.safetensors"), _temp.File("blob"));
        using var file = SafetensorsFile.Open(_temp.File("model.safetensors"));
        Assert.Equal([1f, -2f], file.Get("b").ToArray());
    }

    [Fact]
    public void TruncatedDataIsAnError()
    {
        var bytes = TwoTensors().ToBytes();
        var e = OpenFails(bytes[..^3]);
        Assert.Contains("claims bytes", e.Message);
    }

    [Fact]
    public void TruncatedHeaderIsAnError()
    {
        var bytes = TwoTensors().ToBytes();
        Assert.Contains("header claims", OpenFails(bytes[..20]).Message);
        Assert.Contains("too short", OpenFails(bytes[..5]).Message);
    }

    [Fact]
    public void OffsetsBeyondTheDataAreAnError()
    {
        var writer = TwoTensors();
        var header = writer.Header((name, o) => name == "a" ? (o.Begin + 1000, o.End + 1000) : o);
        Assert.Contains("tensor 'a'", OpenFails(writer.ToBytes(header)).Message);
    }

    [Fact]
    public void NegativeOrReversedOffsetsAreAnError()
    {
        var writer = TwoTensors();
        OpenFails(writer.ToBytes(writer.Header((_, o) => (-8, o.End))));
        OpenFails(writer.ToBytes(writer.Header((_, o) => (o.End, o.Begin))));
    }

    [Fact]
    public void ShapeThatDisagreesWithTheByteCountIsAnError()
    {
        var writer = new SafetensorsWriter().AddF32("a", [2, 4], [1, 2, 3, 4, 5, 6]);
        Assert.Contains("needs 32", OpenFails(writer.ToBytes()).Message);
    }

    [Fact]
    public void MalformedHeadersAreErrors()
    {
        var writer = TwoTensors();
        Assert.Contains("not valid JSON", OpenFails(writer.ToBytes("{\"a\": {")).Message);
        Assert.Contains("not a JSON object", OpenFails(writer.ToBytes("[1, 2]")).Message);
        Assert.Contains("needs dtype", OpenFails(writer.ToBytes("{\"a\": {\"dtype\": \"F32\"}}")).Message);
        Assert.Contains("invalid dimension", OpenFails(writer.ToBytes("{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}")).Message);
    }

    [Fact]
    public void UnsupportedDTypeNamesTheTensor()
    {
        var writer = new SafetensorsWriter().Add("w", "F64", [1], new byte[8]);
        var e = OpenFails(writer.ToBytes());
        Assert.Contains("'w'", e.Message);
        Assert.Contains("F64", e.Message);
    }

    [Fact]
    public void MissingTensorIsAnError()
    {
        var path = _temp.File("ok.safetensors");
        TwoTensors().Save(path);
        using var file = SafetensorsFile.Open(path);
        Assert.Contains("'nope' is missing", Assert.Throws<ModelFormatException>(() => file.Get("nope")).Message);
    }

    [Fact]
    public void ShardedFolderOpensOnlyTheFilesItNeeds()
    {
        new SafetensorsWriter().AddF32("x", [1], [1]).Save(_temp.File("part-1.safetensors"));
        new SafetensorsWriter().AddF32("y", [1], [2]).Save(_temp.File("part-2.safetensors"));
        WriteIndex(new() { ["x"] = "part-1.safetensors", ["y"] = "part-2.safetensors" });

        using var folder = WeightFolder.Open(_temp.Path);
        Assert.Equal([2f], folder.Get("y").ToArray());
        Assert.Equal(["part-2.safetensors"], folder.OpenedFiles);
    }

    [Theory]
    [InlineData("../escape.safetensors")]
    [InlineData("/etc/passwd")]
    [InlineData("")]
    public void IndexThatPointsOutsideTheFolderIsRefused(string file)
    {
        WriteIndex(new() { ["x"] = file });
        Assert.Contains("invalid file name", Assert.Throws<ModelFormatException>(() => WeightFolder.Open(_temp.Path)).Message);
    }

    [Fact]
    public void IndexNamingAMissingShardIsAnError()
    {
        WriteIndex(new() { ["x"] = "gone.safetensors" });
        using var folder = WeightFolder.Open(_temp.Path);
        Assert.Contains("weight file is missing", Assert.Throws<ModelFormatException>(() => folder.Get("x")).Message);
        Assert.Contains("missing from", Assert.Throws<ModelFormatException>(() => folder.Get("y")).Message);
    }

    [Fact]
    public void FolderWithoutWeightsIsAnError() =>
        Assert.Contains("no model.safetensors", Assert.Throws<ModelFormatException>(() => WeightFolder.Open(_temp.Path)).Message);

    private void WriteIndex(Dictionary<string, string> map) =>
        File.WriteAllText(_temp.File("model.safetensors.index.json"), JsonSerializer.Serialize(new { metadata = new { }, weight_map = map }));
}
