using System.Diagnostics;
using System.Net;
using Exo.Contracts.V1;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Exo.Registry.Tests;

/// <summary>The registry as a real process, spoken to over gRPC, with its Redis store.</summary>
[Collection(RedisCollection.Name)]
public sealed class RegistryServiceTests(RedisServer redis) : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly List<ServiceProcess> _processes = [];
    private readonly List<GrpcChannel> _channels = [];

    private sealed record Registry(Contracts.V1.Registry.RegistryClient Client, Health.HealthClient Health, ServiceEndpoints Endpoints, ServiceProcess Process);

    /// <summary>Starts the registry on its two Kestrel endpoints (as the AppHost sets them) without waiting for it to listen.</summary>
    private (ServiceProcess Process, ServiceEndpoints Endpoints) Launch(string? redisConfiguration)
    {
        var endpoints = ServiceEndpoints.Free();
        var environment = redisConfiguration is null ? null : new Dictionary<string, string> { ["ConnectionStrings__redis"] = redisConfiguration };
        var process = ServiceProcess.Start("Exo.Registry.dll", endpoints.Args, environment);
        _processes.Add(process);
        return (process, endpoints);
    }

    /// <summary>Starts the registry and returns its clients once it listens.</summary>
    private Registry StartRegistry(string? redisConfiguration)
    {
        var (process, endpoints) = Launch(redisConfiguration);
        process.WaitUntilListening(Patience);
        var channel = GrpcChannel.ForAddress(endpoints.Grpc);
        _channels.Add(channel);
        return new Registry(new Contracts.V1.Registry.RegistryClient(channel), new Health.HealthClient(channel), endpoints, process);
    }

    private static NodeInfo Node(string id, long gb) => new()
    {
        NodeId = id,
        GrpcEndpoint = "http://127.0.0.1:6000",
        Host = "host-" + id,
        Os = "linux",
        Arch = "x64",
        Backend = "cpu",
        TotalMemoryBytes = (ulong)(gb * 1_000_000_000),
        AvailableMemoryBytes = (ulong)(gb * 800_000_000),
        Version = "test",
        WeightTypes = { "q8_0", "q4_0" },
    };

    private static string Unique(string name) => $"{name}-{Guid.NewGuid().ToString("N")[..8]}";

    [Fact]
    public async Task MembershipLeasesAndWatchOverGrpc()
    {
        var registry = StartRegistry(redis.Configuration).Client;
        var prefix = Guid.NewGuid().ToString("N")[..8];
        var a = $"a-{prefix}";
        var b = $"b-{prefix}";

        using var watching = new CancellationTokenSource(TimeSpan.FromSeconds(40));
        using var watch = registry.Watch(new WatchNodesRequest(), new CallOptions(cancellationToken: watching.Token));
        var events = new List<NodeEvent>();
        var removed = new TaskCompletionSource();
        var reader = Task.Run(async () =>
        {
            while (await watch.ResponseStream.MoveNext(watching.Token))
            {
                var e = watch.ResponseStream.Current;
                lock (events) events.Add(e);
                if (e.Kind == NodeEvent.Types.Kind.Removed && e.Node.NodeId == b) removed.TrySetResult();
            }
        });

        var leaseA = await registry.RegisterAsync(new RegisterRequest { Node = Node(a, 16), InstanceToken = "one" });
        Assert.Equal("one", leaseA.LeaseId);
        await registry.RegisterAsync(new RegisterRequest { Node = Node(b, 8), InstanceToken = "two" });

        // A second machine claiming a live id is refused, with a message that says why.
        var clone = await Assert.ThrowsAsync<RpcException>(async () => await registry.RegisterAsync(new RegisterRequest { Node = Node(a, 16), InstanceToken = "other" }));
        Assert.Equal(StatusCode.AlreadyExists, clone.StatusCode);
        Assert.Contains("node-id", clone.Status.Detail);

        var bad = await Assert.ThrowsAsync<RpcException>(async () => await registry.RegisterAsync(new RegisterRequest { Node = new NodeInfo { NodeId = "x" }, InstanceToken = "t" }));
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);

        var listed = (await registry.ListAsync(new ListNodesRequest())).Nodes.Select(n => n.NodeId).Where(n => n.EndsWith(prefix)).ToList();
        Assert.Equal([a, b], listed);

        // a keeps heart-beating; b goes silent and must disappear within 10 s.
        var silent = Stopwatch.StartNew();
        while (!removed.Task.IsCompleted && silent.Elapsed < TimeSpan.FromSeconds(12))
        {
            await registry.HeartbeatAsync(new HeartbeatRequest { NodeId = a, LeaseId = "one" });
            await Task.WhenAny(removed.Task, Task.Delay(1000));
        }

        Assert.True(removed.Task.IsCompleted, "the silent node was not removed");
        Assert.InRange(silent.Elapsed, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10));
        var expired = await Assert.ThrowsAsync<RpcException>(async () => await registry.HeartbeatAsync(new HeartbeatRequest { NodeId = b, LeaseId = "two" }));
        Assert.Equal(StatusCode.NotFound, expired.StatusCode);

        await registry.DeregisterAsync(new DeregisterRequest { NodeId = a, LeaseId = "one" });
        Assert.DoesNotContain((await registry.ListAsync(new ListNodesRequest())).Nodes, n => n.NodeId == a);
        lock (events)
        {
            Assert.Contains(events, e => e.Kind == NodeEvent.Types.Kind.Added && e.Node.NodeId == a && e.Node.TotalMemoryBytes == 16_000_000_000);
            Assert.Contains(events, e => e.Kind == NodeEvent.Types.Kind.Added && e.Node.NodeId == b);
        }

        await watching.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => reader);
    }

    [Fact]
    public async Task ARestartedRegistryKeepsItsNodesFromRedis()
    {
        var first = StartRegistry(redis.Configuration);
        var id = Unique("kept");
        await first.Client.RegisterAsync(new RegisterRequest { Node = Node(id, 16), InstanceToken = "lease" });

        // Killed, not stopped: what a crash or a power cut leaves behind.
        _processes.Remove(first.Process);
        first.Process.Dispose();
        var restarted = StartRegistry(redis.Configuration).Client;

        var kept = Assert.Single((await restarted.ListAsync(new ListNodesRequest())).Nodes, n => n.NodeId == id);
        Assert.Equal(Node(id, 16), kept);
        // The node's lease lives on: its next heartbeat is taken, and a clone is still refused.
        await restarted.HeartbeatAsync(new HeartbeatRequest { NodeId = id, LeaseId = "lease" });
        var clone = await Assert.ThrowsAsync<RpcException>(async () => await restarted.RegisterAsync(new RegisterRequest { Node = Node(id, 16), InstanceToken = "clone" }));
        Assert.Equal(StatusCode.AlreadyExists, clone.StatusCode);

        using var watching = new CancellationTokenSource(Patience);
        using var watch = restarted.Watch(new WatchNodesRequest(), new CallOptions(cancellationToken: watching.Token));
        var seen = new List<NodeEvent>();
        while (!seen.Any(e => e.Node.NodeId == id) && await watch.ResponseStream.MoveNext(watching.Token)) seen.Add(watch.ResponseStream.Current);
        Assert.Equal(NodeEvent.Types.Kind.Added, Assert.Single(seen, e => e.Node.NodeId == id).Kind);
        await restarted.DeregisterAsync(new DeregisterRequest { NodeId = id, LeaseId = "lease" });
    }

    [Fact]
    public void ARegistryThatCannotReachItsRedisStopsAtOnceSayingWhere()
    {
        var nobody = Ports.Free();
        var (process, _) = Launch($"127.0.0.1:{nobody}");

        Assert.NotEqual(0, process.WaitForExit(Patience));
        Assert.Contains($"cannot reach Redis at 127.0.0.1:{nobody}", process.Log);
        Assert.Contains("ConnectionStrings__redis", process.Log);
        Assert.DoesNotContain("Now listening", process.Log);
    }

    [Fact]
    public async Task HealthOverHttpAndGrpcFollowsRedis()
    {
        var own = new RedisServer();
        await own.InitializeAsync();
        Registry registry;
        try
        {
            registry = StartRegistry(own.Configuration);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"{registry.Endpoints.Http}/health")).StatusCode);
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await registry.Health.CheckAsync(new HealthCheckRequest())).Status);
        }
        finally
        {
            await own.DisposeAsync();
        }

        // Redis is gone: the registry is no longer ready, by /health and by grpc.health, though still alive.
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var deadline = Stopwatch.StartNew();
        HttpStatusCode status;
        while ((status = (await client.GetAsync($"{registry.Endpoints.Http}/health")).StatusCode) == HttpStatusCode.OK && deadline.Elapsed < Patience)
            await Task.Delay(200);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, (await registry.Health.CheckAsync(new HealthCheckRequest())).Status);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"{registry.Endpoints.Http}/alive")).StatusCode);
    }

    [Fact]
    public async Task WithoutRedisMembershipIsKeptInMemory()
    {
        var registry = StartRegistry(null);
        await registry.Client.RegisterAsync(new RegisterRequest { Node = Node("solo", 4), InstanceToken = "t" });
        Assert.Equal("solo", Assert.Single((await registry.Client.ListAsync(new ListNodesRequest())).Nodes).NodeId);
        await registry.Process.WaitForLogAsync("No Redis is configured (ConnectionStrings__redis)", TimeSpan.FromSeconds(10));

        // The http endpoint serves plain HTTP/1.1 next to the h2c gRPC one, for health checks.
        using var http = new HttpClient();
        var health = await http.GetAsync($"{registry.Endpoints.Http}/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(new Version(1, 1), health.Version);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await registry.Health.CheckAsync(new HealthCheckRequest())).Status);
    }

    public void Dispose()
    {
        foreach (var channel in _channels) channel.Dispose();
        foreach (var process in _processes) process.Dispose();
    }
}
