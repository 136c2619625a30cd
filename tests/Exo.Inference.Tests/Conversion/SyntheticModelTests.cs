using Exo.Inference.Conversion;
using Exo.Inference.Generation;
using Exo.Inference.Kernels;
using Exo.Inference.Model;
using Exo.Inference.Tests.Support;
using Exo.Inference.Verification;
using Exo.Inference.Weights;

namespace Exo.Inference.Tests.Conversion;

public sealed class SyntheticModelTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static readonly SyntheticShape Small = new(Dim: 256, Layers: 2, Ffn: 512, Heads: 8, KvHeads: 2, Vocab: 600, Seed: 7);

    [Fact]
    public void GgufAndHuggingFaceFilesHoldTheSameSeededModel()
    {
        var gguf = _temp.File("s.gguf");
        var folder = _temp.File("hf");
        SyntheticModel.WriteGguf(gguf, Small, DType.F32);
        SyntheticModel.WriteHuggingFace(folder, Small, DType.F32);
        SyntheticModel.WriteGguf(_temp.File("again.gguf"), Small, DType.F32);
        Assert.Equal(File.ReadAllBytes(gguf), File.ReadAllBytes(_temp.File("again.gguf")));

        using var a = LocalModel.Load(gguf);
        using var b = LocalModel.Load(folder);
        Assert.Equal((256, 2, 512, 600), (a.Model.Config.HiddenSize, a.Model.Config.LayerCount, a.Model.Config.IntermediateSize, a.Model.Config.VocabSize));
        Assert.Equal(b.Tokenizer.Encode("héllo <|start|>"), a.Tokenizer.Encode("héllo <|start|>"));
        var prompt = a.Tokenizer.Encode("hello");
        var greedy = new Inference.Sampling.SamplingParameters();
        Assert.Equal(b.Generator.Generate(prompt, greedy, 6, new HashSet<int>()).Select(s => s.Token), a.Generator.Generate(prompt, greedy, 6, new HashSet<int>()).Select(s => s.Token));
        Assert.Contains("<|start|>assistant", a.ChatTemplate.Render([new("user", "hi")], null, true));
    }

    [Fact]
    public void QuantizedGgufLoads()
    {
        var gguf = _temp.File("q.gguf");
        SyntheticModel.WriteGguf(gguf, Small, DType.Q4_K);
        using var file = GgufFile.Open(gguf);
        Assert.Equal(DType.Q4_K, file.Get("blk.1.ffn_down.weight").Type);
        // 1.42 M parameters: 5.7 MB in f32, about 0.8 MB at Q4_K's 4.5 bits (the 1-D norms stay f32).
        Assert.InRange(new FileInfo(gguf).Length, 700_000, 1_000_000);
        using var model = LocalModel.Load(gguf);
        Assert.Equal(600, model.Model.Config.VocabSize);
    }

    [Theory]
    [InlineData(DType.Q4_K, DType.Q4_K)]
    [InlineData(DType.Q6_K, DType.Q8_0)]
    [InlineData(DType.Q5_K, DType.Q8_0)]
    public void FastKernelsGetBlockTypesTheyHaveIntegerKernelsFor(DType stored, DType loaded)
    {
        var gguf = _temp.File($"{stored}.gguf");
        SyntheticModel.WriteGguf(gguf, Small, stored);
        using var fast = new FastKernels(2);
        using var reference = ModelStage.Load(gguf, kernels: ReferenceKernels.Instance);
        using var model = ModelStage.Load(gguf, kernels: fast);
        var down = model.Weights.LayerWeights[1].DownProj;
        Assert.Equal(stored, reference.Weights.LayerWeights[1].DownProj.Type);
        // Without integer dot-product instructions the fast kernels keep every type as stored: nothing more to check.
        if (QuantDot.Best == QuantDot.Path.Portable) return;
        Assert.Equal((loaded, TensorLayout.Interleaved), (down.Type, down.Layout));

        // Re-quantizing to Q8_0 and the int8 activations move the logits by a little, not the model's behaviour.
        int[] tokens = [1, 50, 7, 300, 42, 9];
        var vocab = model.Config.VocabSize;
        float[] expected = new float[tokens.Length * vocab], actual = new float[expected.Length];
        reference.ForwardTokens([new SequenceChunk(reference.CreateCache(8), tokens.Length)], tokens, expected, LogitRows.All);
        model.ForwardTokens([new SequenceChunk(model.CreateCache(8), tokens.Length)], tokens, actual, LogitRows.All);
        var error = ModelVerifier.RelativeError(actual, expected);
        Assert.True(error < 0.05, $"relative logit error {error}");
    }

    [Fact]
    public void F16MatricesAreScannedFiniteAtLoad()
    {
        // Every matrix, the q and k ones re-laid-out from llama.cpp's interleaved rows included, takes the cheaper conversion.
        var gguf = _temp.File("f16.gguf");
        SyntheticModel.WriteGguf(gguf, Small, DType.F16);
        var config = SyntheticModel.Config(Small);
        using var stage = Model.StageWeights.Load(gguf, config, LayerRange.All(config.LayerCount));
        var matrices = stage.LayerWeights.SelectMany(l => new[] { l.QProj, l.KProj, l.VProj, l.OProj, l.GateProj, l.UpProj, l.DownProj })
            .Append(stage.EmbedTokens!.Value).Append(stage.LmHead!.Value).ToList();
        Assert.All(matrices, m => Assert.True(m.Type == DType.F16 && m.Finite, m.ToString()));
    }

    [Fact]
    public void ImpossibleShapesAreRejected()
    {
        Assert.Throws<ArgumentException>(() => SyntheticModel.Config(Small with { Dim = 250 }));
        Assert.Throws<ArgumentException>(() => SyntheticModel.Config(Small with { Vocab = 100 }));
        Assert.Throws<ArgumentException>(() => SyntheticModel.WriteHuggingFace(_temp.File("x"), Small, DType.Q8_0));
    }
}
