using Exo.Inference.Tests.Support;

namespace Exo.Inference.Tests.Engine;

/// <summary>Runs the real `exo verify` process.</summary>
public sealed class VerifyCommandTests
{
    internal static (int ExitCode, string Output, string Error) Exo(params string[] args) => ServiceProcess.Run("exo.dll", null, args);

    [Fact]
    public void PassesOnAFixture()
    {
        var (code, output, _) = Exo("verify", "--model", RepositoryPaths.Fixture("qwen3-tiny"));
        Assert.Equal(0, code);
        Assert.Contains("case 0: ", output);
        Assert.Contains("greedy 24/24", output);
        Assert.Contains("3 splits exact", output);
        Assert.Contains("PASS: 5 cases", output);
    }

    [Fact]
    public void FailsWhenTheReferenceDisagrees()
    {
        using var temp = new TempDirectory();
        var source = RepositoryPaths.Fixture("qwen3-tiny");
        foreach (var file in Directory.GetFiles(source)) File.Copy(file, temp.File(Path.GetFileName(file)));
        // Scale the stored logits of the first case: the engine must notice.
        var bin = File.ReadAllBytes(temp.File("reference.bin"));
        for (var i = 0; i < 4096; i += 4) BitConverter.TryWriteBytes(bin.AsSpan(i), BitConverter.ToSingle(bin, i) * 1.01f);
        File.WriteAllBytes(temp.File("reference.bin"), bin);

        var (code, output, _) = Exo("verify", "--model", temp.Path);
        Assert.Equal(1, code);
        Assert.Contains("FAIL", output);
    }

    [Fact]
    public void MissingReferenceIsAClearError()
    {
        using var temp = new TempDirectory();
        var (code, _, error) = Exo("verify", "--model", temp.Path);
        Assert.Equal(2, code);
        Assert.Contains("error:", error);
        Assert.Contains("reference.json", error);
        Assert.DoesNotContain("   at ", error);
    }
}
