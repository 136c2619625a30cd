using System.Text.Json;
using Exo.Inference.Tests.Support;
using Exo.Inference.Verification;
using Exo.Text.Tokenization;

namespace Exo.Inference.Tests.Engine;

/// <summary>Runs the real `exo generate` and `exo chat` processes.</summary>
public sealed class GenerateCommandTests
{
    public static TheoryData<string> SharedFixtures() => new(Directory.GetDirectories(Path.Combine(RepositoryPaths.Shared, "fixtures")).Select(Path.GetFileName).OfType<string>());

    [Theory]
    [MemberData(nameof(SharedFixtures))]
    public void GreedyGenerateStreamsTheReferenceContinuation(string name)
    {
        var folder = RepositoryPaths.Fixture(name);
        var text = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "reference.json"))).RootElement
            .GetProperty("tokenizer")[0].GetProperty("text").GetString()!;
        var tokenizer = Tokenizer.FromModelDirectory(folder);
        var stops = SpecialTokenInfo.FromModelDirectory(folder, tokenizer).StopTokenIds;
        var continuation = ReferenceFile.Load(folder).Cases[0].GreedyNewTokens.TakeWhile(t => !stops.Contains(t)).ToArray();

        var (code, output, error) = VerifyCommandTests.Exo("generate", "--model", folder, "--prompt", text, "--max-tokens", "24");
        Assert.True(code == 0, error);
        Assert.Equal(tokenizer.Decode(continuation, skipSpecialTokens: true) + "\n", output);
    }

    [Fact]
    public void ChatAnswersEachLineAndStopsAtEndOfInput()
    {
        var (code, output, error) = ServiceProcess.Run("exo.dll", "Hello there\nAnd again?\n",
            "chat", "--model", RepositoryPaths.Fixture("qwen2-tiny"), "--max-tokens", "8", "--system", "Be brief.");
        Assert.True(code == 0, error);
        Assert.False(string.IsNullOrWhiteSpace(output));
    }

    [Fact]
    public void BadOptionsAndFoldersAreClearErrors()
    {
        var (code, _, error) = VerifyCommandTests.Exo("generate", "--model", RepositoryPaths.Fixture("llama-tiny"), "--prompt", "x", "--top-p", "3");
        Assert.Equal(2, code);
        Assert.Equal("error: top_p must be in (0, 1]", error.Trim());

        using var temp = new TempDirectory();
        (code, _, error) = VerifyCommandTests.Exo("chat", "--model", temp.Path);
        Assert.Equal(2, code);
        Assert.Contains("tokenizer.json", error);
        Assert.DoesNotContain("   at ", error);
    }
}
