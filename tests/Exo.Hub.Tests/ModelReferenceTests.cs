namespace Exo.Hub.Tests;

/// <summary>Model ids, revisions and file paths come from users and listings: only plain names pass.</summary>
public sealed class ModelReferenceTests
{
    [Theory]
    [InlineData("Qwen/Qwen2.5-0.5B-Instruct", "Qwen", "Qwen2.5-0.5B-Instruct", "main")]
    [InlineData("meta-llama/Llama-3.2-1B@v1.0", "meta-llama", "Llama-3.2-1B", "v1.0")]
    [InlineData("org/name@refs/pr/1", "org", "name", "refs/pr/1")]
    [InlineData("a_b/c_d@0123456789abcdef0123456789abcdef01234567", "a_b", "c_d", "0123456789abcdef0123456789abcdef01234567")]
    public void ParsesRepositoryAndRevision(string text, string organization, string name, string revision) =>
        Assert.Equal(new ModelReference(organization, name, revision), ModelReference.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("name")]
    [InlineData("a/b/c")]
    [InlineData("/abs")]
    [InlineData("org/..")]
    [InlineData("org/a..b")]
    [InlineData("org/a--b")]
    [InlineData("org/.hidden")]
    [InlineData("org/name.git")]
    [InlineData("org/na me")]
    [InlineData("org/name@")]
    [InlineData("org/name@../x")]
    [InlineData("org/name@a//b")]
    [InlineData("org/name@/abs")]
    [InlineData("org/name@a b")]
    public void RefusesAnythingElse(string text) => Assert.Throws<ArgumentException>(() => ModelReference.Parse(text));

    [Theory]
    [InlineData("config.json", true)]
    [InlineData("onnx/model.onnx", true)]
    [InlineData("../config.json", false)]
    [InlineData("a/../../b", false)]
    [InlineData("/etc/passwd", false)]
    [InlineData("a//b", false)]
    [InlineData("a\\b", false)]
    [InlineData("C:x", false)]
    [InlineData(".gitattributes", false)]
    [InlineData("sub/.cache/x", false)]
    [InlineData("", false)]
    [InlineData("nul\0", false)]
    public void AFilePathIsPlainAndRelative(string path, bool allowed) => Assert.Equal(allowed, ModelPaths.Problem(path) is null);
}
