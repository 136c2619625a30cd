using Exo.Inference.Backends;
using Exo.Inference.Kernels;
using Exo.Inference.Tests.Support;
using Exo.Inference.Verification;

namespace Exo.Inference.Tests.Kernels;

public sealed class FastModelTests
{
    public static TheoryData<string> Models() => new(TestPaths.FixtureModels());

    [Theory]
    [MemberData(nameof(Models))]
    public void FastKernelsReproduceTheReferenceLogits(string model)
    {
        // Two threads whatever the machine, so the parallel paths are what is checked.
        using var kernels = new FastKernels(2);
        var reports = new ModelVerifier(model, BackendOptions.Cpu(kernels), [[new(0, 1), new(1, Config(model))]]).Run().ToList();
        Assert.NotEmpty(reports);
        foreach (var r in reports)
        {
            Assert.True(r.LogitError <= ModelVerifier.DefaultTolerance, $"{Path.GetFileName(model)} case {r.Index}: logit error {r.LogitError}");
            Assert.Equal(r.GreedyTotal, r.GreedyMatches);
            Assert.True(r.StepwiseExact, $"case {r.Index}: decode steps differ from prefill");
            Assert.Empty(r.ShardMismatches);
        }
    }

    private static int Config(string model) => Model.ModelConfig.Load(model).LayerCount;
}
