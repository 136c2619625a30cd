using Exo.Contracts.V1;
using Exo.Grpc;

namespace Exo.Planner.Tests;

/// <summary>The planner as a real process following a real registry process over gRPC.</summary>
public sealed class PlannerServiceTests : IDisposable
{
    private readonly List<ServiceProcess> _processes = [];

    /// <summary>Starts a service and waits until it listens (its gRPC endpoint comes up with the same host).</summary>
    private void Start(string assembly, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var process = ServiceProcess.Start(assembly, args, environment);
        _processes.Add(process);
        process.WaitUntilListening(TimeSpan.FromSeconds(60));
    }

    private static async Task<T> Eventually<T>(Func<Task<T>> action)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                return await action();
            }
            catch (RpcException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
    }

    private static NodeInfo Node(string id, double gb) => new()
    {
        NodeId = id,
        GrpcEndpoint = $"http://127.0.0.1:{6000 + id.Length}",
        Host = id,
        Backend = "cpu",
        TotalMemoryBytes = (ulong)(gb * 1e9),
        AvailableMemoryBytes = (ulong)(gb * 1e9),
    };

    [Fact]
    public async Task JoiningAndLeavingNodesReplanTheRing()
    {
        var registryPort = Ports.Free();
        var plannerPort = Ports.Free();
        Start("Exo.Registry.dll", null, "--Registry:GrpcPort", registryPort.ToString(), "--Registry:GrpcAddress", "127.0.0.1");
        var model = RepositoryPaths.ShippedModel;
        Start("Exo.Planner.dll", new Dictionary<string, string> { ["services__registry__grpc__0"] = $"http://127.0.0.1:{registryPort}" },
            "--Planner:GrpcPort", plannerPort.ToString(), "--Planner:GrpcAddress", "127.0.0.1", "--Planner:Models:0", model, "--Planner:ContextTokens", "1024");

        var registry = new Contracts.V1.Registry.RegistryClient(GrpcChannel.ForAddress($"http://127.0.0.1:{registryPort}"));
        var planner = new Contracts.V1.Planner.PlannerClient(GrpcChannel.ForAddress($"http://127.0.0.1:{plannerPort}"));

        // Before any worker joins, the planner says why it has no placement.
        var none = await Eventually(async () =>
        {
            try
            {
                await planner.GetPlacementAsync(new GetPlacementRequest { ModelId = "exo-tiny" });
                throw new InvalidOperationException("expected no placement");
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.FailedPrecondition)
            {
                return e;
            }
        });
        Assert.Contains("no shard workers", none.Status.Detail);

        using var watching = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var watch = planner.WatchPlacements(new WatchPlacementsRequest { ModelId = "exo-tiny" }, new CallOptions(CancellationToken: watching.Token));
        async Task<Contracts.V1.Placement> NextWithStages(int count)
        {
            while (await watch.ResponseStream.MoveNext(watching.Token))
            {
                if (watch.ResponseStream.Current.Stages.Count == count) return watch.ResponseStream.Current;
            }

            throw new InvalidOperationException("the placement stream ended");
        }

        await Eventually(async () => await registry.RegisterAsync(new RegisterRequest { Node = Node("big", 4), InstanceToken = "1" }));
        var one = await NextWithStages(1);
        Assert.Equal(("big", 0u, 8u), (one.Stages[0].NodeId, one.Stages[0].LayerStart, one.Stages[0].LayerEnd));

        await registry.RegisterAsync(new RegisterRequest { Node = Node("small", 2), InstanceToken = "2" });
        var two = await NextWithStages(2);
        Assert.True(two.Version > one.Version);
        Assert.Equal(["big", "small"], two.Stages.Select(s => s.NodeId));
        Assert.Equal(0u, two.Stages[0].LayerStart);
        Assert.Equal(two.Stages[0].LayerEnd, two.Stages[1].LayerStart);
        Assert.Equal(8u, two.Stages[1].LayerEnd);
        Assert.True(two.Stages[0].LayerEnd > 4, "the node with more memory holds more layers");
        Assert.Equal("http://127.0.0.1:6005", two.Stages[1].GrpcEndpoint);

        await registry.DeregisterAsync(new DeregisterRequest { NodeId = "big", LeaseId = "1" });
        var left = await NextWithStages(1);
        Assert.Equal("small", left.Stages[0].NodeId);
        Assert.True(left.Version > two.Version);
        Assert.Equal(left, await planner.GetPlacementAsync(new GetPlacementRequest { ModelId = "exo-tiny" }));
    }

    public void Dispose()
    {
        foreach (var process in _processes) process.Dispose();
    }
}
