using Exo.AppHost.Hosting;

namespace Exo.AppHost.Tests;

/// <summary>The resource model: what references and endpoints put in a process's environment, and in which order things start.</summary>
public sealed class ResourceModelTests
{
    private static ResourceBuilder<ExecutableResource> Program(DistributedApplicationBuilder app, string name) => app.AddExecutable(name, "true", Path.GetTempPath());

    [Fact]
    public void EndpointsAndReferencesBecomeAspireStyleEnvironmentVariables()
    {
        var app = new DistributedApplicationBuilder();
        var registry = Program(app, "registry").WithHttpEndpoint().WithEndpoint("grpc", "Registry__GrpcPort");
        var gateway = Program(app, "gateway").WithHttpEndpoint(port: 52499, host: "localhost").WithReference(registry);

        var http = registry.Resource.GetEndpoint("http");
        var grpc = registry.Resource.GetEndpoint("grpc");
        Assert.NotEqual(http.Port, grpc.Port);
        Assert.Equal(new Dictionary<string, string>
        {
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{http.Port}",
            ["Registry__GrpcPort"] = grpc.Port.ToString(),
        }, registry.Resource.ResolveEnvironment());
        Assert.Equal(new Dictionary<string, string>
        {
            ["ASPNETCORE_URLS"] = "http://localhost:52499",
            ["services__registry__http__0"] = $"http://127.0.0.1:{http.Port}",
            ["services__registry__grpc__0"] = $"http://127.0.0.1:{grpc.Port}",
        }, gateway.Resource.ResolveEnvironment());
    }

    [Fact]
    public void ReferencesAreResolvedWhenTheProcessStartsSoLaterEndpointsAreIncluded()
    {
        var app = new DistributedApplicationBuilder();
        var planner = Program(app, "planner");
        var worker = Program(app, "worker-1").WithReference(planner);
        planner.WithEndpoint("grpc", "Planner__GrpcPort");

        Assert.Equal($"http://127.0.0.1:{planner.Resource.GetEndpoint("grpc").Port}", worker.Resource.ResolveEnvironment()["services__planner__grpc__0"]);
    }

    [Fact]
    public void RedisIsReferencedByConnectionStringAndAMissingRedisAddsNothing()
    {
        var app = new DistributedApplicationBuilder();
        var redis = app.AddRedis("redis");
        Assert.NotNull(redis); // CI installs redis-server, as .ci/run does
        var registry = Program(app, "registry").WithReference(redis).WaitFor(redis);
        var alone = Program(app, "alone").WithReference((ResourceBuilder<RedisResource>?)null).WaitFor((ResourceBuilder<RedisResource>?)null);

        Assert.Equal($"127.0.0.1:{redis.Resource.Port}", registry.Resource.ResolveEnvironment()["ConnectionStrings__redis"]);
        Assert.Equal(["--port", redis.Resource.Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], redis.Resource.Command.Arguments);
        Assert.Equal([redis.Resource], registry.Resource.WaitsFor);
        Assert.Empty(alone.Resource.ResolveEnvironment());
        Assert.Empty(alone.Resource.WaitsFor);
    }

    [Fact]
    public void LaterEnvironmentSettingsWin()
    {
        var app = new DistributedApplicationBuilder();
        var resource = Program(app, "svc").WithEnvironment("A", "1").WithEnvironment("A", "2");

        Assert.Equal("2", resource.Resource.ResolveEnvironment()["A"]);
    }

    [Fact]
    public void PortsAreNeverHandedOutTwice()
    {
        var app = new DistributedApplicationBuilder();
        var ports = Enumerable.Range(0, 200).Select(_ => app.AllocatePort()).ToList();

        Assert.Equal(ports.Count, ports.Distinct().Count());
        var fixedPort = ports[0];
        Assert.Throws<InvalidOperationException>(() => Program(app, "a").WithHttpEndpoint(port: fixedPort));
    }

    [Fact]
    public void TheClusterStartsInWavesOfDependencies()
    {
        var app = new DistributedApplicationBuilder();
        var redis = Program(app, "redis");
        var registry = Program(app, "registry").WaitFor(redis);
        var planner = Program(app, "planner").WaitFor(registry).WaitFor(redis);
        Program(app, "worker-1").WaitFor(registry).WaitFor(planner);
        Program(app, "gateway").WaitFor(planner).WaitFor(registry);
        Program(app, "worker-2").WaitFor(planner);

        var waves = app.Build(new ConsoleLog(TextWriter.Null, TextWriter.Null, colour: false)).StartWaves;

        Assert.Equal([["redis"], ["registry"], ["planner"], ["worker-1", "gateway", "worker-2"]], waves.Select(w => w.Select(r => r.Name).ToArray()).ToArray());
    }

    [Fact]
    public void CyclesSelfWaitsAndForeignResourcesAreRefused()
    {
        var log = new ConsoleLog(TextWriter.Null, TextWriter.Null, colour: false);
        var app = new DistributedApplicationBuilder();
        var a = Program(app, "a");
        var b = Program(app, "b").WaitFor(a);
        a.WaitFor(b);
        Assert.Contains("cycle", Assert.Throws<InvalidOperationException>(() => app.Build(log)).Message);
        Assert.Throws<InvalidOperationException>(() => a.WaitFor(a));

        var other = new DistributedApplicationBuilder();
        var outsider = Program(other, "outsider");
        var app2 = new DistributedApplicationBuilder();
        Program(app2, "c").WaitFor(outsider);
        Assert.Contains("not part of the application", Assert.Throws<InvalidOperationException>(() => app2.Build(log)).Message);
    }

    [Theory]
    [InlineData("Registry")]
    [InlineData("1worker")]
    [InlineData("worker_1")]
    [InlineData("")]
    public void NamesThatCannotBeEnvironmentVariablePartsAreRefused(string name) =>
        Assert.Throws<ArgumentException>(() => new DistributedApplicationBuilder().AddExecutable(name, "true", "."));

    [Fact]
    public void DuplicateNamesAreRefused()
    {
        var app = new DistributedApplicationBuilder();
        Program(app, "a");
        Assert.Throws<InvalidOperationException>(() => Program(app, "a"));
    }

    [Fact]
    public void LinesArePrefixedWithPaddedNamesAndColouredOnlyWhenAsked()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var log = new ConsoleLog(output, error, colour: false);
        log.SetResources(["redis", "registry", "worker-12"]);

        log.Resource("redis", "Ready to accept connections", isError: false);
        log.Resource("worker-12", "fail: something", isError: true);
        log.Info("ready: x");
        log.Error("gateway exited");

        Assert.Equal($"redis     | Ready to accept connections{Environment.NewLine}ready: x{Environment.NewLine}", output.ToString());
        Assert.Equal($"worker-12 | fail: something{Environment.NewLine}error: gateway exited{Environment.NewLine}", error.ToString());

        var coloured = new ConsoleLog(TextWriter.Null, TextWriter.Null, colour: true);
        coloured.SetResources(["redis", "registry"]);
        Assert.Equal("\e[36mredis    |\e[0m ", coloured.Prefix("redis"));
        Assert.Equal("\e[32mregistry |\e[0m ", coloured.Prefix("registry"));
    }
}
