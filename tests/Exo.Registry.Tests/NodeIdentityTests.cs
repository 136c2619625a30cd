using Exo.Contracts;
using Exo.Registry.Store;

namespace Exo.Registry.Tests;

public sealed class NodeIdentityTests : IDisposable
{
    private readonly string _dataDirectory = Path.Combine(Path.GetTempPath(), $"exo-node-{Guid.NewGuid():N}", "data");

    public void Dispose() => Directory.Delete(Path.GetDirectoryName(_dataDirectory)!, recursive: true);

    [Fact]
    public void TheIdIsCreatedOnceAndKeptAcrossStarts()
    {
        var id = NodeIdentity.LoadOrCreate(_dataDirectory);

        Assert.True(NodeIdentity.IsValid(id));
        Assert.Equal(id, File.ReadAllText(Path.Combine(_dataDirectory, NodeIdentity.FileName)).Trim());
        Assert.Equal(id, NodeIdentity.LoadOrCreate(_dataDirectory));
        Assert.Equal([NodeIdentity.FileName], Directory.GetFiles(_dataDirectory).Select(Path.GetFileName));
    }

    [Fact]
    public void ConcurrentFirstStartsAgreeOnOneId()
    {
        var ids = Enumerable.Range(0, 8).AsParallel().Select(_ => NodeIdentity.LoadOrCreate(_dataDirectory)).ToArray();

        Assert.Single(ids.Distinct());
        Assert.Single(Directory.GetFiles(_dataDirectory));
    }

    [Fact]
    public void AHandWrittenIdIsKept()
    {
        Directory.CreateDirectory(_dataDirectory);
        File.WriteAllText(Path.Combine(_dataDirectory, NodeIdentity.FileName), "studio-2\n");
        Assert.Equal("studio-2", NodeIdentity.LoadOrCreate(_dataDirectory));
    }

    [Theory]
    [InlineData("")]
    [InlineData("../../etc/passwd")]
    [InlineData("two words")]
    [InlineData("-leading-dash")]
    public void InvalidContentsAreAnErrorThatSaysHowToFixIt(string contents)
    {
        Directory.CreateDirectory(_dataDirectory);
        File.WriteAllText(Path.Combine(_dataDirectory, NodeIdentity.FileName), contents);

        var error = Assert.Throws<InvalidDataException>(() => NodeIdentity.LoadOrCreate(_dataDirectory));
        Assert.Contains("is not a valid node id", error.Message);
        Assert.Contains("delete the file", error.Message);
    }

    [Fact]
    public void AnOversizedFileIsRefusedWithoutReadingIt()
    {
        Directory.CreateDirectory(_dataDirectory);
        File.WriteAllBytes(Path.Combine(_dataDirectory, NodeIdentity.FileName), new byte[1 << 20]);
        Assert.Contains("too long", Assert.Throws<InvalidDataException>(() => NodeIdentity.LoadOrCreate(_dataDirectory)).Message);
    }
}
