using Xunit.Abstractions;

namespace Exo.Hub.Tests;

/// <summary>`exo models pull|list|rm` as a real process against the fake hub, with its cache in a temporary EXO_HOME.</summary>
public sealed class ModelsCommandTests(ITestOutputHelper output) : FakeHubTest
{

    private (int ExitCode, string Output, string Error) Exo(params string[] args) =>
        ServiceProcess.Run("exo.dll", null, ["models", .. args, "--home", Scratch.Path]);

    [Fact]
    public void PullsListsAndRemovesAModel()
    {
        var pull = Exo("pull", "exo/exo-tiny", "--endpoint", FakeHub.Endpoint.AbsoluteUri);
        Assert.True(pull.ExitCode == 0, pull.Error);
        output.WriteLine(pull.Output);
        Assert.Contains($"pulled exo/exo-tiny at {FakeHub.Commit}: {FakeHub.Files.Count} files", pull.Output);
        Assert.Contains("model.safetensors: 42.0 MiB", pull.Output);

        // The link in EXO_HOME/models leads to the snapshot, which holds the hub's files.
        var link = Path.Combine(Scratch.Path, "models", "exo-tiny");
        var snapshot = Path.Combine(Scratch.Path, "hub", "exo", "exo-tiny", FakeHub.Commit);
        Assert.Equal(snapshot, new DirectoryInfo(link).LinkTarget);
        Assert.Equal(FakeHub.Commit, File.ReadAllText(Path.Combine(Scratch.Path, "hub", "exo", "exo-tiny", "refs", "main")));
        foreach (var (name, bytes) in FakeHub.Files) Assert.True(bytes.AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(link, name))), name);

        var list = Exo("list");
        Assert.Equal(0, list.ExitCode);
        var row = Assert.Single(list.Output.Split('\n'), line => line.StartsWith("* exo/exo-tiny", StringComparison.Ordinal));
        Assert.Contains(" main ", row);
        Assert.Contains(FakeHub.Commit[..12], row);
        Assert.Contains("44.7 MiB", row);
        Assert.EndsWith(snapshot, row.TrimEnd());

        var remove = Exo("rm", "exo/exo-tiny");
        Assert.Equal(0, remove.ExitCode);
        Assert.False(Path.Exists(link));
        Assert.False(Directory.Exists(Path.Combine(Scratch.Path, "hub", "exo", "exo-tiny")));
        Assert.Contains("no models pulled yet", Exo("list").Output);
    }

    [Theory]
    [InlineData("exo", "'exo' is not a model id: write ORG/NAME or ORG/NAME@REVISION")]
    [InlineData("exo/../etc", "'exo/../etc' is not a model id")]
    [InlineData("exo/tiny@../../x", "'../../x' is not a revision")]
    [InlineData("exo/-tiny", "invalid name '-tiny'")]
    [InlineData("exo/no-such-model", "repository exo/no-such-model or its revision 'main' does not exist")]
    public void RefusesWithOneLineThatSaysWhatToDo(string model, string message)
    {
        var (code, stdout, error) = Exo("pull", model, "--endpoint", FakeHub.Endpoint.AbsoluteUri);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("error: ", error);
        Assert.Contains(message, error);
    }

    [Fact]
    public void RemovingAModelThatIsNotThereSaysSo()
    {
        var (code, _, error) = Exo("rm", "exo/exo-tiny");
        Assert.Equal(2, code);
        Assert.Contains("exo/exo-tiny is not pulled", error);
    }
}
