using Exo.Inference.Backends;
using Exo.Inference.Conversion;
using Exo.Inference.Kernels;
using Exo.Inference.Model;
using Exo.Inference.Tests.Engine;
using Exo.Inference.Tests.Support;
using Exo.Inference.Verification;
using Exo.Inference.Weights;

namespace Exo.Inference.Tests.Vulkan;

/// <summary>Whole models on the GPU backend (lavapipe in CI) against transformers' fixtures and the reference kernels.</summary>
public sealed class VulkanModelTests : IDisposable
{
    private static readonly BackendOptions Vulkan = new(BackendKind.Vulkan);
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    public static TheoryData<string> Fixtures() => new(TestPaths.FixtureModels().Select(Path.GetFileName).OfType<string>());

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void ExoVerifyPassesEveryFixtureOnTheGpu(string name)
    {
        // The real command: logits within 1e-4 of transformers, greedy identical, stepwise and every 2- and 3-stage split exact.
        var folder = TestPaths.FixtureModels().Single(m => Path.GetFileName(m) == name);
        var (code, output, error) = VerifyCommandTests.Exo("verify", "--model", folder, "--backend", "vulkan");
        Assert.True(code == 0, output + error);
        Assert.Contains("backend: vulkan ", output);
        Assert.Matches(@"PASS: \d+ cases", output);
        Assert.DoesNotContain("FAIL", output);
    }

    public static TheoryData<DType> StoredTypes => [DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q4_K, DType.Q6_K, DType.Q5_K];

    [Theory]
    [MemberData(nameof(StoredTypes))]
    public void QuantizedModelsMatchTheReferenceKernels(DType type)
    {
        // Q5_K has no GPU kernel: the loader converts it to Q8_0, so the reference is given the same conversion.
        var gguf = _temp.File($"{type}.gguf");
        SyntheticModel.WriteGguf(gguf, new SyntheticShape(Dim: 256, Layers: 2, Ffn: 768, Heads: 4, KvHeads: 2, Vocab: 300, Seed: 3), type);
        using var gpu = StageLoader.Load(gguf, null, Vulkan);
        using var reference = StageLoader.Load(gguf, null, BackendOptions.Cpu(ReferenceKernels.Instance), type == DType.Q5_K ? DType.Q8_0 : null);
        Assert.StartsWith("vulkan ", gpu.Backend);
        int[] tokens = [5, 17, 299, 0, 42, 42, 7];
        var expected = Logits(reference, tokens);
        var actual = Logits(gpu, tokens);
        var error = ModelVerifier.RelativeError(actual, expected);
        Assert.True(error < 1e-4, $"{type}: relative logit error {error:0.00e+0}");
    }

    [Fact]
    public void LongPrefillsMatchTheReferenceKernels()
    {
        // Attention runs in slices of 256 rows a sequence: 600 rows take three rounds, beside a short sequence that has
        // only the first; the short one then continues with 300 rows that start mid-span, after its cached prefix.
        var gguf = _temp.File("long.gguf");
        SyntheticModel.WriteGguf(gguf, new SyntheticShape(Dim: 128, Layers: 2, Ffn: 256, Heads: 4, KvHeads: 2, Vocab: 300, Seed: 9), DType.F32);
        using var gpu = StageLoader.Load(gguf, null, Vulkan);
        using var reference = StageLoader.Load(gguf, null, BackendOptions.Cpu(ReferenceKernels.Instance));
        var random = new Random(4);
        var tokens = Enumerable.Range(0, 940).Select(_ => random.Next(300)).ToArray();
        using var gpuLong = gpu.CreateCache(600);
        using var gpuShort = gpu.CreateCache(340);
        using var referenceLong = reference.CreateCache(600);
        using var referenceShort = reference.CreateCache(340);
        (KvCache Gpu, KvCache Reference, int Rows)[][] steps = [[(gpuLong, referenceLong, 600), (gpuShort, referenceShort, 40)], [(gpuShort, referenceShort, 300)]];
        var at = 0;
        foreach (var step in steps)
        {
            var rows = step.Sum(s => s.Rows);
            var stepTokens = tokens[at..(at + rows)];
            at += rows;
            var expected = new float[rows * reference.Config.VocabSize];
            var actual = new float[expected.Length];
            reference.ForwardTokens(step.Select(s => new SequenceChunk(s.Reference, s.Rows)).ToArray(), stepTokens, expected, LogitRows.All);
            gpu.ForwardTokens(step.Select(s => new SequenceChunk(s.Gpu, s.Rows)).ToArray(), stepTokens, actual, LogitRows.All);
            var error = ModelVerifier.RelativeError(actual, expected);
            Assert.True(error < 1e-4, $"{rows} rows: relative logit error {error:0.00e+0}");
        }
    }

    private static float[] Logits(IModelStage stage, int[] tokens)
    {
        using var cache = stage.CreateCache(tokens.Length);
        var logits = new float[tokens.Length * stage.Config.VocabSize];
        stage.ForwardTokens([new SequenceChunk(cache, tokens.Length)], tokens, logits, LogitRows.All);
        return logits;
    }

    [Fact]
    public void ConcurrentSequencesDecodeAsTheyWouldAlone()
    {
        // A batch of three sequences at different depths gives each the logits it gets when run alone.
        using var stage = StageLoader.Load(RepositoryPaths.Fixture("qwen2-tiny"), null, Vulkan);
        int[][] prompts = [[1, 2, 3], [9, 8, 7, 6, 5], [4]];
        var vocab = stage.Config.VocabSize;
        var alone = prompts.Select(p => Logits(stage, [.. p, 11])[(p.Length * vocab)..]).ToArray();

        var caches = prompts.Select(p => stage.CreateCache(p.Length + 1)).ToArray();
        try
        {
            var scratch = new float[vocab];
            for (var i = 0; i < prompts.Length; i++) stage.ForwardTokens([new SequenceChunk(caches[i], prompts[i].Length)], prompts[i], scratch);
            var batched = new float[prompts.Length * vocab];
            stage.ForwardTokens(caches.Select(c => new SequenceChunk(c, 1)).ToArray(), [11, 11, 11], batched);
            for (var i = 0; i < prompts.Length; i++) Assert.Equal(alone[i], batched[(i * vocab)..((i + 1) * vocab)]);
        }
        finally
        {
            foreach (var c in caches) c.Dispose();
        }
    }

    [Fact]
    public void ACacheFromAnotherStageIsRefused()
    {
        using var gpu = StageLoader.Load(RepositoryPaths.Fixture("llama-tiny"), null, Vulkan);
        using var cpu = StageLoader.Load(RepositoryPaths.Fixture("llama-tiny"), null, BackendOptions.Cpu());
        using var cache = cpu.CreateCache(4);
        Assert.Throws<ArgumentException>(() => gpu.ForwardTokens([new SequenceChunk(cache, 1)], [1], new float[gpu.Config.VocabSize]));
    }

    [Fact]
    public void AFreedCacheIsRefusedAndTheStageRunsOn()
    {
        // A request closed before its step runs: its cache's memory is gone, so the step must not touch it.
        using var gpu = StageLoader.Load(RepositoryPaths.Fixture("llama-tiny"), null, Vulkan);
        var freed = gpu.CreateCache(4);
        freed.Dispose();
        var logits = new float[gpu.Config.VocabSize];
        Assert.Throws<ObjectDisposedException>(() => gpu.ForwardTokens([new SequenceChunk(freed, 1)], [1], logits));
        using var cache = gpu.CreateCache(4);
        Assert.Equal(1, gpu.ForwardTokens([new SequenceChunk(cache, 1)], [1], logits));
    }
}
