using Exo.ServiceDefaults;
using Microsoft.Extensions.Configuration;

namespace Exo.ServiceDefaults.Tests;

public sealed class ServiceDiscoveryTests
{
    private static IConfiguration Configuration(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => KeyValuePair.Create(v.Key, (string?)v.Value))).Build();

    [Fact]
    public void AspireStyleEnvironmentVariablesResolve()
    {
        // The real path: environment variables with double underscores, as an AppHost passes them to a child process.
        var service = $"planner{Guid.NewGuid():N}";
        Environment.SetEnvironmentVariable($"services__{service}__http__0", "http://127.0.0.1:5101");
        Environment.SetEnvironmentVariable($"services__{service}__grpc__0", "https://10.0.0.2:7443/");
        try
        {
            var configuration = new ConfigurationBuilder().AddEnvironmentVariables().Build();
            Assert.Equal(new Uri("http://127.0.0.1:5101"), configuration.ResolveServiceUri(service));
            Assert.Equal(new Uri("https://10.0.0.2:7443/"), configuration.ResolveServiceUri(service, "grpc"));
        }
        finally
        {
            Environment.SetEnvironmentVariable($"services__{service}__http__0", null);
            Environment.SetEnvironmentVariable($"services__{service}__grpc__0", null);
        }
    }

    [Fact]
    public void AMissingServiceNamesTheKeyToSet()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Configuration().ResolveServiceUri("planner"));
        Assert.Contains("no address for service 'planner'", error.Message);
        Assert.Contains("configuration key 'services:planner:http:0'", error.Message);
        Assert.Contains("environment variable 'services__planner__http__0'", error.Message);
    }

    [Fact]
    public void AMissingEndpointListsTheOnesThatExist()
    {
        var configuration = Configuration(("services:planner:grpc:0", "http://127.0.0.1:1"));
        var error = Assert.Throws<InvalidOperationException>(() => configuration.ResolveServiceUri("planner"));
        Assert.Contains("'planner' has only these endpoints configured: grpc", error.Message);
    }

    [Theory]
    [InlineData("127.0.0.1:5101")]
    [InlineData("ftp://host/")]
    [InlineData("/relative")]
    public void AMalformedAddressIsRefused(string value)
    {
        var error = Assert.Throws<InvalidOperationException>(() =>
            Configuration(("services:planner:http:0", value)).ResolveServiceUri("planner"));
        Assert.Equal($"configuration key 'services:planner:http:0' is '{value}', which is not an absolute http or https address", error.Message);
    }

    [Fact]
    public void RedisConnectionStringComesFromConnectionStrings()
    {
        Assert.Equal("127.0.0.1:6380", Configuration(("ConnectionStrings:redis", "127.0.0.1:6380")).GetRedisConnectionString());
        Assert.Null(Configuration().GetRedisConnectionString());
        Assert.Null(Configuration(("ConnectionStrings:redis", "  ")).GetRedisConnectionString());
    }

    [Fact]
    public void TelemetryIsNamedAfterTheService()
    {
        using var planner = new ServiceTelemetry("Planner", "1.2.3");
        using var registry = new ServiceTelemetry("Exo.Registry");

        Assert.Equal("Exo.Planner", planner.Name);
        Assert.Equal("Exo.Planner", planner.ActivitySource.Name);
        Assert.Equal("Exo.Planner", planner.Meter.Name);
        Assert.Equal("1.2.3", planner.Meter.Version);
        Assert.Equal("Exo.Registry", registry.Name);
    }
}
