using System.Diagnostics;
using Exo.Contracts.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Exo.Registry.Tests;

/// <summary>The registry as a real process, spoken to over gRPC, with its Redis store.</summary>
[Collection(RedisCollection.Name)]
public sealed class RegistryServiceTests(RedisServer redis) : IDisposable
{
    private readonly List<ServiceProcess> _processes = [];

    /// <summary>Starts the registry and returns a client once its gRPC port answers.</summary>
    private Contracts.V1.Registry.RegistryClient StartRegistry(string? redisConfiguration, int? httpPort = null)
    {
        var port = Ports.Free();
        var environment = redisConfiguration is null ? null : new Dictionary<string, string> { ["ConnectionStrings__redis"] = redisConfiguration };
        var process = ServiceProcess.Start("Exo.Registry.dll",
            ["--Registry:GrpcPort", port.ToString(), "--Registry:GrpcAddress", "127.0.0.1", .. (httpPort is { } http ? new[] { "--urls", $"http://127.0.0.1:{http}" } : [])],
            environment);
        _processes.Add(process);
        process.WaitUntilListening(TimeSpan.FromSeconds(60));
        return new Contracts.V1.Registry.RegistryClient(GrpcChannel.ForAddress($"http://127.0.0.1:{port}"));
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
    };

    [Fact]
    public async Task MembershipLeasesAndWatchOverGrpc()
    {
        var registry = StartRegistry(redis.Configuration);
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
    public async Task WithoutRedisMembershipIsKeptInMemory()
    {
        var httpPort = Ports.Free();
        var registry = StartRegistry(null, httpPort);
        await registry.RegisterAsync(new RegisterRequest { Node = Node("solo", 4), InstanceToken = "t" });
        Assert.Equal("solo", Assert.Single((await registry.ListAsync(new ListNodesRequest())).Nodes).NodeId);

        // --urls keeps serving plain HTTP/1.1 next to the h2c gRPC port, for health checks.
        using var http = new HttpClient();
        var health = await http.GetAsync($"http://127.0.0.1:{httpPort}/health");
        Assert.Equal(System.Net.HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(new Version(1, 1), health.Version);
    }

    public void Dispose()
    {
        foreach (var process in _processes) process.Dispose();
    }
}
