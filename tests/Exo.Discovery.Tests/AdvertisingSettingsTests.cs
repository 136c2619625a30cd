namespace Exo.Discovery.Tests;

/// <summary>The registry's advertising settings, checked before anything is sent: one line for each thing to fix.</summary>
public sealed class AdvertisingSettingsTests
{
    [Theory]
    [InlineData("Registry:Advertise is 'maybe': set it to true or false", "--Registry:Advertise=maybe")]
    [InlineData("Cluster:Name 'a.b' is not a cluster name", "--Registry:Advertise=true", "--Cluster:Name=a.b")]
    [InlineData("Registry:AdvertisedPlanner is 'ftp://x:1', which is not an absolute http or https address",
        "--Registry:Advertise=true", "--Registry:AdvertisedPlanner=ftp://x:1")]
    [InlineData("network interface 'no-such-nic' is not up or not multicast-capable", "--Registry:Advertise=true", "--Registry:AdvertisedPlanner=http://10.0.0.2:52417",
        "--Discovery:Interface=no-such-nic")]
    public void BadSettingsAreOneErrorLine(string expected, params string[] args)
    {
        var (code, output, error) = ServiceProcess.Run("Exo.Registry.dll", null, [.. args, $"--Kestrel:Endpoints:grpc:Url=http://127.0.0.1:{Ports.Free()}"]);
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", error);
        Assert.Contains(expected, error);
        Assert.DoesNotContain("   at ", error + output);
    }
}
