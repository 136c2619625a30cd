namespace Exo.ShardWorker.Tests;

/// <summary>The worker as a person starts it by hand: --help, and one clear line for each thing to fix.</summary>
public sealed class CommandLineTests
{
    [Fact]
    public void HelpListsTheOptions()
    {
        var (code, output, _) = ServiceProcess.Run("Exo.ShardWorker.dll", null, "--help");
        Assert.Equal(0, code);
        Assert.Contains("--registry URL", output);
        Assert.Contains("--models-dir DIR", output);
        Assert.Contains("Cluster__Secret", output);
        Assert.Contains("--cluster NAME", output);
        Assert.Contains("mDNS (multicast on UDP 5353)", output);
    }

    [Theory]
    [InlineData("the models directory '/no/such/folder' does not exist", "--models-dir", "/no/such/folder")]
    [InlineData("'ShardWorker:GrpcPort'", "--port", "many")]
    [InlineData("is not a port number", "--port", "0")]
    [InlineData("is not a URL", "--advertise", "ftp://studio:52418", "--port", "1")]
    // A worker with no registry address looks for one on the network (tests of that run in a namespace of their own).
    [InlineData("services__planner__grpc__0", "--registry", "http://127.0.0.1:1", "--port", "1")]
    [InlineData("--cluster 'two words' is not a cluster name", "--cluster", "two words", "--port", "1")]
    [InlineData("'nonsense', which is not an absolute http or https address", "--registry", "nonsense", "--port", "1")]
    public void BadSettingsAreOneErrorLine(string expected, params string[] args)
    {
        using var data = new TempDirectory();
        var (code, output, error) = ServiceProcess.Run("Exo.ShardWorker.dll", null, [.. args, "--data-dir", data.Path]);
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", error);
        Assert.Contains(expected, error);
        Assert.DoesNotContain("   at ", error + output);
    }
}
