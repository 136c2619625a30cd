using Exo.Inference.Generation;
using Exo.Inference.Model;
using Exo.Inference.Sampling;
using Exo.Inference.Tests.Support;
using Exo.Inference.Verification;

namespace Exo.Inference.Tests.Engine;

public sealed class GeneratorTests
{
    [Fact]
    public void GreedyGenerationReproducesTheReferenceContinuation()
    {
        var folder = RepositoryPaths.Fixture("llama-tiny");
        var reference = ReferenceFile.Load(folder).Cases[0];
        using var model = ModelStage.Load(folder);
        var tokens = new Generator(model).Generate(reference.InputIds, SamplingParameters.Greedy, 24, new HashSet<int>()).ToList();
        Assert.Equal(reference.GreedyNewTokens, tokens.Select(t => t.Token));
        Assert.Equal(FinishReason.Length, tokens[^1].Finish);
        Assert.All(tokens[..^1], t => Assert.Null(t.Finish));
    }

    [Fact]
    public void StopsAtAnEndToken()
    {
        var folder = RepositoryPaths.Fixture("llama-tiny");
        var reference = ReferenceFile.Load(folder).Cases[0];
        using var model = ModelStage.Load(folder);
        var end = reference.GreedyNewTokens[3];
        var tokens = new Generator(model).Generate(reference.InputIds, SamplingParameters.Greedy, 24, new HashSet<int> { end }).ToList();
        Assert.Equal(reference.GreedyNewTokens[..4], tokens.Select(t => t.Token));
        Assert.Equal(new GeneratedToken(end, FinishReason.Stop), tokens[^1]);
    }

    [Fact]
    public void SeededSamplingRepeatsAndLimitsAreChecked()
    {
        using var model = ModelStage.Load(RepositoryPaths.Fixture("qwen3-tiny"));
        var generator = new Generator(model);
        var p = new SamplingParameters { Temperature = 0.9f, TopP = 0.95f, Seed = 7 };
        int[] prompt = [10, 20, 30];
        var first = generator.Generate(prompt, p, 16, new HashSet<int>()).Select(t => t.Token).ToList();
        var second = generator.Generate(prompt, p, 16, new HashSet<int>()).Select(t => t.Token).ToList();
        Assert.Equal(16, first.Count);
        Assert.Equal(first, second);

        Assert.Throws<ArgumentException>(() => generator.Generate([], p, 4, new HashSet<int>()).ToList());
        Assert.Throws<ArgumentException>(() => generator.Generate(new int[model.Config.MaxPositionEmbeddings], p, 4, new HashSet<int>()).ToList());
        using var part = ModelStage.Load(RepositoryPaths.Fixture("qwen3-tiny"), new LayerRange(0, 1));
        Assert.Throws<ArgumentException>(() => new Generator(part));
    }
}
