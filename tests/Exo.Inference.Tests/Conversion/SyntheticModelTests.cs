using Exo.Inference.Conversion;
using Exo.Inference.Generation;
using Exo.Inference.Tests.Support;
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
