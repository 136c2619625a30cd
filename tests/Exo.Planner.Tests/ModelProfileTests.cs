using System.Buffers.Binary;
using Exo.Inference;
using Exo.Inference.Kernels;
using Exo.Inference.Model;
using Exo.Inference.Weights;
using Exo.Planner.Planning;

namespace Exo.Planner.Tests;

public sealed class ModelProfileTests : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("exo-profile-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    private static string Fixture(string name) => RepositoryPaths.Fixture(name);

    /// <summary>Bytes of tensor data in a safetensors file: everything after the 8-byte length and the JSON header.</summary>
    private static long DataBytes(string file)
    {
        using var stream = File.OpenRead(file);
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        return stream.Length - 8 - (long)BinaryPrimitives.ReadUInt64LittleEndian(prefix);
    }

    [Theory]
    [InlineData("llama-tiny", 4, true)]
    [InlineData("qwen2-tiny", 3, false)]
    [InlineData("qwen3-tiny", 3, true)]
    public void ProfileAccountsForEveryStoredWeightByte(string fixture, int layers, bool tied)
    {
        var directory = Fixture(fixture);
        var profile = ModelProfile.FromModelDirectory(directory, contextTokens: 100);

        Assert.Equal(fixture, profile.ModelId);
        Assert.Equal(layers, profile.LayerCount);
        Assert.Equal(tied, profile.TiedEmbeddings);
        Assert.Equal(100, profile.ContextTokens);
        // The architecture's parameter count times the element size must match the weights actually stored.
        Assert.Equal(DataBytes(Path.Combine(directory, "model.safetensors")),
            profile.EmbeddingBytes + profile.LayerCount * profile.LayerBytes + profile.HeadBytes);
    }

    [Theory]
    [InlineData(DType.Q8_0)]
    [InlineData(DType.Q4_0)]
    public void AQuantizedProfileCountsWhatTheEngineLoads(DType type)
    {
        // llama-tiny stores f32, as the engine keeps vectors, so the whole model's step reads are every byte it holds.
        var directory = Fixture("llama-tiny");
        var profile = ModelProfile.FromModelDirectory(directory, contextTokens: 100, quantize: type);
        var stored = ModelProfile.FromModelDirectory(directory, contextTokens: 100);
        using var stage = ModelStage.Load(directory, null, ReferenceKernels.Instance, type);
        Assert.Equal(stage.Weights.BytesPerToken, profile.StepReadBytes(profile.LayerCount, first: false, last: true));
        Assert.Equal(stage.Weights.AnonymousBytes, profile.EmbeddingBytes + profile.LayerCount * (profile.LayerBytes - VectorBytes(stage.Weights.LayerWeights[0])));
        Assert.True(profile.LayerBytes < stored.LayerBytes / 3, $"{profile.LayerBytes} of {stored.LayerBytes}");
        // The work of a token does not change with the type it is stored in.
        Assert.Equal(stored.LayerOperations, profile.LayerOperations);
        Assert.Equal(stored.HeadOperations, profile.HeadOperations);
    }

    private static long VectorBytes(LayerWeights l) =>
        sizeof(float) * new[] { l.InputNorm, l.QBias, l.KBias, l.VBias, l.OBias, l.QNorm, l.KNorm, l.PostAttentionNorm, l.GateBias, l.UpBias, l.DownBias }.Sum(v => (long)v.Length);

    [Theory]
    [InlineData("q8_0", DType.Q8_0)]
    [InlineData(" Q4_0 ", DType.Q4_0)]
    [InlineData("none", null)]
    [InlineData("", null)]
    [InlineData(null, null)]
    public void TheQuantizeSettingReadsTheTypesTheEngineLoadsTo(string? text, DType? type)
    {
        var setting = WeightQuantization.Parse(text);
        Assert.Equal(type, setting.Type);
        Assert.Equal(type is null ? "" : text!.Trim().ToLowerInvariant(), setting.Name);
    }

    [Theory]
    [InlineData("q4_k")]
    [InlineData("f16")]
    [InlineData("8")]
    [InlineData("int8")]
    [InlineData("f16,bf16")]
    [InlineData(" 3")]
    [InlineData("+4")]
    [InlineData("q8_0,q4_0")]
    public void AnyOtherQuantizeSettingIsAClearError(string text)
    {
        var e = Assert.Throws<InvalidOperationException>(() => WeightQuantization.Parse(text));
        Assert.Contains("Planner__Quantize", e.Message);
        Assert.Contains("choose q8_0 or q4_0", e.Message);
    }

    [Fact]
    public void KvAndContextFollowTheConfig()
    {
        // llama-tiny: 2 kv heads of 16 dims, keys and values in f32; context defaults to max_position_embeddings.
        var profile = ModelProfile.FromModelDirectory(Fixture("llama-tiny"));
        Assert.Equal(2 * 2 * 16 * 4, profile.KvBytesPerTokenPerLayer);
        Assert.Equal(512, profile.ContextTokens);
        Assert.Equal(profile.LayerBytes + 512L * 256, profile.LayerCostBytes);
    }

    [Fact]
    public void TheWorkOfATokenFollowsTheConfig()
    {
        // llama-tiny stores f32 (4 bytes a weight): a multiply-add, 2 operations, per weight of a layer and of the
        // head, which is the tied embedding matrix; the first stage reads one row of hidden_size weights.
        var profile = ModelProfile.FromModelDirectory(Fixture("llama-tiny"));
        var config = ModelConfig.Load(Fixture("llama-tiny"));
        Assert.Equal(2 * profile.LayerBytes / 4, profile.LayerOperations);
        Assert.Equal(2L * config.VocabSize * config.HiddenSize, profile.HeadOperations);
        Assert.Equal(config.HiddenSize * 4L, profile.EmbeddingRowBytes);

        // Per token the last stage reads its layers, the norm and the tied embedding matrix; the first a row.
        Assert.Equal(2 * profile.LayerBytes + profile.HeadBytes + profile.EmbeddingBytes, profile.StepReadBytes(2, first: false, last: true));
        Assert.Equal(profile.LayerBytes + profile.EmbeddingRowBytes, profile.StepReadBytes(1, first: true, last: false));
        Assert.Equal(3 * profile.LayerOperations + profile.HeadOperations, profile.StepOperations(3, last: true));
    }

    [Fact]
    public void WithoutAConfigDtypeTheSafetensorsElementSizeIsUsed()
    {
        // qwen3-tiny stores bf16; with the dtype removed from config.json the weights must still say 2 bytes.
        var source = Fixture("qwen3-tiny");
        var config = File.ReadAllText(Path.Combine(source, "config.json")).Replace("\"dtype\": \"bfloat16\",", "");
        Assert.DoesNotContain("\"dtype\"", config);
        File.WriteAllText(Path.Combine(_scratch, "config.json"), config);
        File.Copy(Path.Combine(source, "model.safetensors"), Path.Combine(_scratch, "model.safetensors"));

        var fromWeights = ModelProfile.FromModelDirectory(_scratch);
        var fromConfig = ModelProfile.FromModelDirectory(source);
        Assert.Equal(fromConfig with { ModelId = "x" }, fromWeights with { ModelId = "x" });
    }

    [Fact]
    public void BadFoldersFailClearly()
    {
        Assert.Contains("config.json: missing", Assert.Throws<ModelFormatException>(() => ModelProfile.FromModelDirectory(_scratch)).Message);

        var config = File.ReadAllText(Path.Combine(Fixture("llama-tiny"), "config.json"));
        File.WriteAllText(Path.Combine(_scratch, "config.json"), config.Replace("\"float32\"", "\"int4\""));
        Assert.Contains("dtype 'int4' is not supported", Assert.Throws<ModelFormatException>(() => ModelProfile.FromModelDirectory(_scratch)).Message);

        // No dtype in the config and no weights to ask.
        File.WriteAllText(Path.Combine(_scratch, "config.json"), config.Replace("\"dtype\": \"float32\",", ""));
        Assert.Contains("no model.safetensors", Assert.Throws<ModelFormatException>(() => ModelProfile.FromModelDirectory(_scratch)).Message);
    }

    [Fact]
    public void FixtureProfilePlansAcrossNodes()
    {
        var profile = ModelProfile.FromModelDirectory(Fixture("qwen2-tiny"), contextTokens: 64);
        var half = profile.TotalBytes / 2 + profile.LayerCostBytes;
        var placement = RingPlanner.Plan([new NodeCapacity("b", half), new NodeCapacity("a", half)], profile, 1);

        // Three layers over two equal nodes: 1.5 each, the leftover to the first.
        Assert.Equal([new LayerRange(0, 2), new LayerRange(2, 3)], placement.Stages.Select(s => s.Layers));
    }
}
