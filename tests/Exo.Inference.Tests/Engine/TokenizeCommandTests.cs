using System.Text.Json;
using Exo.Inference.Tests.Support;

namespace Exo.Inference.Tests.Engine;

/// <summary>Runs the real `exo tokenize` and `exo template` processes against the fixtures' reference values.</summary>
public sealed class TokenizeCommandTests
{
    private static JsonElement Reference(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryPaths.Fixture(name), "reference.json"))).RootElement;

    [Theory]
    [MemberData(nameof(GenerateCommandTests.SharedFixtures), MemberType = typeof(GenerateCommandTests))]
    public void TokenizeAndTemplateMatchTransformers(string name)
    {
        var reference = Reference(name);
        var encode = reference.GetProperty("tokenizer")[0];
        var (code, output, error) = VerifyCommandTests.Exo("tokenize", "--model", RepositoryPaths.Fixture(name), "--text", encode.GetProperty("text").GetString()!);
        Assert.True(code == 0, error);
        Assert.Equal(encode.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()), JsonSerializer.Deserialize<int[]>(output)!);

        var chat = reference.GetProperty("chat")[0];
        using var temp = new TempDirectory();
        File.WriteAllText(temp.File("messages.json"), chat.GetProperty("messages").GetRawText());
        (code, output, error) = VerifyCommandTests.Exo("template", "--model", RepositoryPaths.Fixture(name), "--messages", temp.File("messages.json"), "--add-generation-prompt");
        Assert.True(code == 0, error);
        Assert.Equal(chat.GetProperty("text").GetString(), output);
    }

    [Fact]
    public void MissingFilesAreClearErrors()
    {
        using var temp = new TempDirectory();
        var (code, _, error) = VerifyCommandTests.Exo("tokenize", "--model", temp.Path, "--text", "x");
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", error);
        (code, _, error) = VerifyCommandTests.Exo("template", "--model", RepositoryPaths.Fixture("llama-tiny"), "--messages", temp.File("none.json"));
        Assert.Equal(2, code);
        Assert.DoesNotContain("   at ", error);
    }
}
