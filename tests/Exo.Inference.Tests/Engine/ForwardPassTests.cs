using Exo.Inference.Backends;
using Exo.Inference.Kernels;
using Exo.Inference.Model;
using Exo.Inference.Tests.Support;
using Exo.Inference.Verification;
using Exo.Inference.Weights;

namespace Exo.Inference.Tests.Engine;

public sealed class ForwardPassTests
{
    public static TheoryData<string> Models() => new(TestPaths.FixtureModels().Select(Path.GetFileName).OfType<string>());

    private static string ModelPath(string name) => TestPaths.FixtureModels().Single(m => Path.GetFileName(m) == name);

    [Theory]
    [MemberData(nameof(Models))]
    public void MatchesTransformersWholeStepwiseAndSharded(string model)
    {
        var reports = new ModelVerifier(ModelPath(model), BackendOptions.Cpu(ReferenceKernels.Instance)).Run().ToList();
        Assert.NotEmpty(reports);
        foreach (var r in reports)
        {
            Assert.True(r.LogitError <= ModelVerifier.DefaultTolerance, $"case {r.Index}: logit error {r.LogitError}");
            Assert.All(r.HiddenErrors, e => Assert.True(e <= ModelVerifier.DefaultTolerance, $"case {r.Index}: hidden error {e}"));
            Assert.Equal(r.GreedyTotal, r.GreedyMatches);
            Assert.True(r.StepwiseExact, $"case {r.Index}: decode steps differ from prefill");
            Assert.Empty(r.ShardMismatches);
            Assert.True(r.Passed(ModelVerifier.DefaultTolerance));
        }
    }

    [Fact]
    public void TheShippedModelMatchesTransformers()
    {
        // exo-tiny is 22 M parameters: two representative splits keep this test quick; `exo verify` runs all 28.
        var folder = RepositoryPaths.ShippedModel;
        LayerRange[][] splits = [[new(0, 4), new(4, 8)], [new(0, 1), new(1, 7), new(7, 8)]];
        var reports = new ModelVerifier(folder, BackendOptions.Cpu(ReferenceKernels.Instance), splits).Run().ToList();
        Assert.NotEmpty(reports);
        Assert.All(reports, r => Assert.True(r.Passed(ModelVerifier.DefaultTolerance), $"case {r.Index}: error {r.LogitError}, greedy {r.GreedyMatches}/{r.GreedyTotal}"));
    }

    [Fact]
    public void SplitsCoverEveryBoundary()
    {
        var splits = ModelVerifier.Splits(4);
        Assert.Equal(3 + 3, splits.Count);
        Assert.Contains(splits, s => s.SequenceEqual([new LayerRange(0, 1), new LayerRange(1, 3), new LayerRange(3, 4)]));
        Assert.Empty(ModelVerifier.Splits(1));
    }

    [Fact]
    public void BatchedSequencesEqualSeparateRuns()
    {
        using var stage = ModelStage.Load(RepositoryPaths.Fixture("qwen2-tiny"));
        int[] a = [5, 17, 300, 41, 7], b = [900, 2, 64];
        var vocab = stage.Config.VocabSize;

        float[] Alone(int[] tokens)
        {
            var output = new float[vocab];
            stage.ForwardTokens([new SequenceChunk(stage.CreateCache(8), tokens.Length)], tokens, output);
            return output;
        }

        var batched = new float[2 * vocab];
        SequenceChunk[] batch = [new(stage.CreateCache(8), a.Length), new(stage.CreateCache(8), b.Length)];
        Assert.Equal(2, stage.ForwardTokens(batch, [.. a, .. b], batched));
        Assert.Equal(Alone(a), batched[..vocab]);
        Assert.Equal(Alone(b), batched[vocab..]);
        Assert.Equal(a.Length, batch[0].Cache.Length);
    }

    [Fact]
    public void AStageNeedsOnlyItsOwnTensors()
    {
        using var temp = new TempDirectory();
        var source = RepositoryPaths.Fixture("llama-tiny");
        File.Copy(Path.Combine(source, "config.json"), temp.File("config.json"));
        using (var folder = WeightFolder.Open(source))
        {
            var names = new[] { "input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj" }
                .Select(n => $"model.layers.1.{n}.weight");
            new SafetensorsWriter().CopyFrom(folder, names).Save(temp.File("model.safetensors"));
        }

        using var full = ModelStage.Load(source, new LayerRange(1, 2));
        using var partial = ModelStage.Load(temp.Path, new LayerRange(1, 2));
        Assert.False(partial.IsFirst || partial.IsLast);

        var hidden = Enumerable.Range(0, 3 * 64).Select(i => MathF.Sin(i)).ToArray();
        float[] expected = new float[hidden.Length], actual = new float[hidden.Length];
        full.ForwardHidden([new SequenceChunk(full.CreateCache(4), 3)], hidden, expected);
        partial.ForwardHidden([new SequenceChunk(partial.CreateCache(4), 3)], hidden, actual);
        Assert.Equal(expected, actual);

        var e = Assert.Throws<ModelFormatException>(() => ModelStage.Load(temp.Path, new LayerRange(0, 2)));
        Assert.Contains("model.embed_tokens.weight", e.Message);
    }

    [Fact]
    public void AStageOfAShardedCheckpointMapsOnlyTheFilesHoldingItsTensors()
    {
        var folder = Path.Combine(RepositoryPaths.Root, "tests", "fixtures", "extra", "qwen2-sharded");
        using var middle = ModelStage.Load(folder, new LayerRange(1, 2));
        Assert.Equal(["model-00002-of-00003.safetensors"], middle.Weights.MappedFiles);
        using var first = ModelStage.Load(folder, new LayerRange(0, 1));
        Assert.Equal(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors"], first.Weights.MappedFiles.Order());
    }

    [Fact]
    public void BadInputsAreClearErrors()
    {
        using var stage = ModelStage.Load(RepositoryPaths.Fixture("llama-tiny"));
        var output = new float[stage.Config.VocabSize];
        var cache = stage.CreateCache(2);
        Assert.Throws<ArgumentOutOfRangeException>(() => stage.ForwardTokens([new SequenceChunk(cache, 1)], [stage.Config.VocabSize], output));
        Assert.Throws<ArgumentException>(() => stage.ForwardTokens([new SequenceChunk(cache, 2)], [1], output));
        var full = Assert.Throws<InvalidOperationException>(() => stage.ForwardTokens([new SequenceChunk(cache, 3)], [1, 2, 3], output));
        Assert.Contains("context is full", full.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ModelStage.Load(RepositoryPaths.Fixture("llama-tiny"), new LayerRange(2, 9)));

        using var middle = ModelStage.Load(RepositoryPaths.Fixture("llama-tiny"), new LayerRange(1, 2));
        Assert.Throws<InvalidOperationException>(() => middle.ForwardTokens([new SequenceChunk(middle.CreateCache(2), 1)], [1], output));
    }

    [Fact]
    public void TensorShapesAreCheckedAgainstTheConfig()
    {
        using var temp = new TempDirectory();
        var source = RepositoryPaths.Fixture("llama-tiny");
        File.WriteAllText(temp.File("config.json"), File.ReadAllText(Path.Combine(source, "config.json")).Replace("\"intermediate_size\": 160", "\"intermediate_size\": 150"));
        File.Copy(Path.Combine(source, "model.safetensors"), temp.File("model.safetensors"));
        var e = Assert.Throws<ModelFormatException>(() => ModelStage.Load(temp.Path));
        Assert.Contains("mlp.gate_proj.weight' has shape [160, 64]; the model's config implies [150, 64]", e.Message);
    }

    [Fact]
    public void TruncatedWeightFileIsAnError()
    {
        using var temp = new TempDirectory();
        var source = RepositoryPaths.Fixture("qwen3-tiny");
        File.Copy(Path.Combine(source, "config.json"), temp.File("config.json"));
        var bytes = File.ReadAllBytes(Path.Combine(source, "model.safetensors"));
        File.WriteAllBytes(temp.File("model.safetensors"), bytes[..(bytes.Length / 2)]);
        Assert.Throws<ModelFormatException>(() => ModelStage.Load(temp.Path));
    }
}
