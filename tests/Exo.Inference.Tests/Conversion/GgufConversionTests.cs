using Exo.Inference.Backends;
using Exo.Inference.Conversion;
using Exo.Inference.Generation;
using Exo.Inference.Kernels;
using Exo.Inference.Model;
using Exo.Inference.Tests.Support;
using Exo.Inference.Verification;
using Exo.Inference.Weights;
using Exo.Text.Templates;
using Exo.Text.Tokenization;

namespace Exo.Inference.Tests.Conversion;

/// <summary>Hugging Face fixtures converted to GGUF and run back through the engine against transformers' references.</summary>
public sealed class GgufConversionTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    public static TheoryData<string> Fixtures => new(TestPaths.FixtureModels());

    private string Convert(string folder, DType type)
    {
        var path = _temp.File($"{Path.GetFileName(folder)}-{type}.gguf");
        using var conversion = GgufConversion.FromHuggingFace(folder, type);
        conversion.Writer.Write(path);
        return path;
    }

    private static List<CaseReport> Verify(string gguf, string folder) =>
        new ModelVerifier(gguf, BackendOptions.Cpu(ReferenceKernels.Instance), splits: [], referenceDirectory: folder).Run().ToList();

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void F16FileGivesTheReferenceLogits(string folder)
    {
        var reports = Verify(Convert(folder, DType.F16), folder);
        Assert.NotEmpty(reports);
        foreach (var report in reports)
        {
            // f16 rounding of the weights (2^-11 relative) is all that separates the file from the checkpoint.
            Assert.True(report.LogitError < 5e-3, $"case {report.Index}: logit error {report.LogitError}");
            Assert.Equal(report.GreedyTotal, report.GreedyMatches);
            Assert.True(report.StepwiseExact);
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Q8_0FileStaysWithinQuantizationError(string folder)
    {
        var gguf = Convert(folder, DType.Q8_0);
        using (var file = GgufFile.Open(gguf))
            Assert.Equal(DType.Q8_0, file.Get("blk.0.ffn_up.weight").Type);
        foreach (var report in Verify(gguf, folder))
        {
            // Q8_0 weights are off by ~0.5% RMS; these tiny random models amplify that about tenfold in the logits.
            Assert.True(report.LogitError < 0.15, $"case {report.Index}: logit error {report.LogitError}");
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void FileLoadsBackWithTheSameTokenizerAndTemplate(string folder)
    {
        var gguf = Convert(folder, DType.F16);
        using var fromGguf = LocalModel.Load(gguf);
        var hf = Tokenizer.FromModelDirectory(folder);
        var hfSpecial = SpecialTokenInfo.FromModelDirectory(folder, hf);
        var reference = SharedData.ReadJson(Path.Combine(folder, "reference.json"));
        foreach (var text in new[] { "Hello, world! 123 héllo\n\n  spaced", "" }.Concat(
                     reference.TryGetProperty("tokenizer", out var cases) ? cases.EnumerateArray().Select(c => c.GetProperty("text").GetString()!) : []))
        {
            Assert.Equal(hf.Encode(text), fromGguf.Tokenizer.Encode(text));
            Assert.Equal(hf.Encode(text, false), fromGguf.Tokenizer.Encode(text, false));
        }

        Assert.Equal(hfSpecial.BosTokenId, fromGguf.Special.BosTokenId);
        Assert.Equal(hfSpecial.EosTokenId, fromGguf.Special.EosTokenId);
        Assert.Subset(fromGguf.Special.StopTokenIds.ToHashSet(), hfSpecial.StopTokenIds.ToHashSet());
        ChatMessage[] messages = [new("system", "Be brief."), new("user", "Hi there"), new("assistant", "Hello!"), new("user", "Bye")];
        Assert.Equal(ChatTemplate.FromModelDirectory(folder).Render(messages, null, true), fromGguf.ChatTemplate.Render(messages, null, true));
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void QuantizingAtLoadGivesTheSameModelAsAQuantizedFile(string folder)
    {
        var gguf = Convert(folder, DType.Q8_0);
        using var fromFile = ModelStage.Load(gguf);
        using var atLoad = ModelStage.Load(folder, quantize: DType.Q8_0);
        Assert.Equal(DType.Q8_0, atLoad.Weights.LayerWeights[0].DownProj.Type);
        Assert.True(atLoad.Weights.AnonymousBytes > 0);

        int[] tokens = [1, 5, 9, 2, 7];
        var expected = new float[tokens.Length * fromFile.Config.VocabSize];
        var actual = new float[expected.Length];
        fromFile.ForwardTokens([new SequenceChunk(fromFile.CreateCache(8), tokens.Length)], tokens, expected, LogitRows.All);
        atLoad.ForwardTokens([new SequenceChunk(atLoad.CreateCache(8), tokens.Length)], tokens, actual, LogitRows.All);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void LlamaQAndKRowsAreInterleavedInTheFileAndRestoredOnLoad()
    {
        var folder = TestPaths.FixtureModels().First(f => ModelConfig.Load(f).ModelType == "llama");
        var config = ModelConfig.Load(folder);
        var gguf = Convert(folder, DType.F32);
        using var hf = WeightFolder.Open(folder);
        using var file = GgufFile.Open(gguf);
        var original = hf.Get("model.layers.0.self_attn.k_proj.weight");
        var stored = file.Get("blk.0.attn_k.weight");
        var a = new float[original.Columns];
        var b = new float[original.Columns];
        original.ReadRow(1, a);
        stored.ReadRow(StageWeights.InterleavedRow(1, config.HeadDim), b);
        Assert.Equal(a, b);
        Assert.Equal(2, StageWeights.InterleavedRow(1, config.HeadDim));
        for (var r = 0; r < 3 * config.HeadDim; r++)
            Assert.Equal(r, StageWeights.DeinterleavedRow(StageWeights.InterleavedRow(r, config.HeadDim), config.HeadDim));

        using var weights = StageWeights.Load(gguf, ModelConfig.LoadAny(gguf), LayerRange.All(config.LayerCount));
        weights.LayerWeights[0].KProj.ReadRow(1, b);
        Assert.Equal(a, b);
    }

    public static TheoryData<string> RealTokenizers => SharedData.FolderNames("realtok");

    [Theory]
    [MemberData(nameof(RealTokenizers))]
    public void RealTokenizersSurviveTheTripThroughGguf(string name)
    {
        var folder = Path.Combine(RepositoryPaths.Shared, "realtok", name);
        var hf = Tokenizer.FromModelDirectory(folder);
        var writer = new GgufWriter();
        GgufTokenizer.Write(folder, hf.VocabSize, writer);
        var path = _temp.File($"{name}.gguf");
        writer.Write(path);
        using var file = GgufFile.Open(path);
        var tokenizer = GgufTokenizer.Read(file.Metadata);

        var refs = SharedData.ReadJson(Path.Combine(folder, "refs.json"));
        var failures = new List<string>();
        foreach (var entry in refs.GetProperty("encode_cases").EnumerateArray())
        {
            var input = entry.GetProperty("input").GetString()!;
            var raw = entry.GetProperty("raw");
            var expected = SharedData.Ints(raw.GetProperty("ids_with_special"));
            var actual = tokenizer.Encode(input);
            if (!expected.SequenceEqual(actual)) failures.Add($"'{input}': [{string.Join(",", expected)}] vs [{string.Join(",", actual)}]");
            if (tokenizer.Decode(expected, skipSpecialTokens: true) != raw.GetProperty("decode_skip_special").GetString()) failures.Add($"decode '{input}'");
        }

        Assert.True(failures.Count == 0, $"{name} ({file.Metadata.String("tokenizer.ggml.model")}): {failures.Count} mismatches:\n" + string.Join("\n", failures.Take(10)));
    }
}
