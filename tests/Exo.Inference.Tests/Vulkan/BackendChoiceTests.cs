using Exo.Inference.Tests.Engine;

namespace Exo.Inference.Tests.Vulkan;

/// <summary>`--backend` and `--gpu` as a user types them, through the real `exo` process.</summary>
public sealed class BackendChoiceTests
{
    [Fact]
    public void AGpuThatIsNotThereIsOneClearLine()
    {
        var (code, _, error) = VerifyCommandTests.Exo("generate", "--model", RepositoryPaths.ShippedModel, "--prompt", "It is", "--gpu", "7");
        Assert.Equal(2, code);
        Assert.Matches(@"^error: --gpu 7: this machine has \d+ Vulkan device\(s\): 0: ", error);
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public void BadChoicesAreRefusedBeforeAnythingLoads()
    {
        var (code, _, error) = VerifyCommandTests.Exo("generate", "--model", RepositoryPaths.ShippedModel, "--prompt", "It is", "--backend", "tpu");
        Assert.Equal(2, code);
        Assert.Contains("--backend: unknown backend 'tpu': choose auto, cpu or vulkan", error);

        (code, _, error) = VerifyCommandTests.Exo("generate", "--model", RepositoryPaths.ShippedModel, "--prompt", "It is", "--backend", "cpu", "--gpu", "0");
        Assert.Equal(2, code);
        Assert.Contains("--gpu names a GPU, but --backend cpu was asked for", error);
    }

    [Fact]
    public void AutoNeverTakesACpuImplementationOfVulkan()
    {
        // In CI the only Vulkan device is lavapipe: auto runs on the CPU, and `exo devices` says why.
        var (code, output, _) = VerifyCommandTests.Exo("devices");
        Assert.Equal(0, code);
        Assert.Contains("(cpu, ", output);
        Assert.Contains("--backend auto runs on the CPU", output);
        (code, output, _) = VerifyCommandTests.Exo("bench", "--model", RepositoryPaths.Fixture("llama-tiny"), "--backend", "auto", "--pp", "8", "--tg", "4",
            "--bandwidth-mb", "16", "--threads", "1");
        Assert.Equal(0, code);
        Assert.Contains("(cpu fast-", output);
    }
}
