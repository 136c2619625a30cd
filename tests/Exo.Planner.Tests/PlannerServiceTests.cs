using Exo.Contracts.V1;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Exo.Planner.Tests;

/// <summary>The planner as a real process following a real registry process over gRPC, with its placements in a real Redis or in memory.</summary>
[Collection(RedisCollection.Name)]
public sealed class PlannerServiceTests(RedisServer redis) : IDisposable
{
    private const string Model = "exo-tiny";
    private readonly List<ServiceProcess> _processes = [];
    private readonly List<GrpcChannel> _channels = [];
    private ServiceEndpoints? _registry;

    /// <summary>Starts a service on its two Kestrel endpoints (as the AppHost sets them) and waits until it listens.</summary>
    private (GrpcChannel Channel, ServiceProcess Process, ServiceEndpoints Endpoints) Start(string assembly, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var endpoints = ServiceEndpoints.Free();
        var process = ServiceProcess.Start(assembly, [.. endpoints.Args, .. args], environment);
        _processes.Add(process);
        process.WaitUntilListening(TimeSpan.FromSeconds(60));
        var channel = GrpcChannel.ForAddress(endpoints.Grpc);
        _channels.Add(channel);
        return (channel, process, endpoints);
    }

    private Contracts.V1.Registry.RegistryClient StartRegistry()
    {
        var (channel, _, endpoints) = Start("Exo.Registry.dll", null);
        _registry = endpoints;
        return new Contracts.V1.Registry.RegistryClient(channel);
    }

    /// <summary>The planner's settings: the shipped model, the registry by service discovery, the test's Redis or none.</summary>
    private Dictionary<string, string> PlannerEnvironment(string? redisConfiguration)
    {
        var environment = new Dictionary<string, string> { ["services__registry__grpc__0"] = _registry?.Grpc ?? $"http://127.0.0.1:{Ports.Free()}" };
        if (redisConfiguration is not null) environment["ConnectionStrings__redis"] = redisConfiguration;
        return environment;
    }

    private static readonly string[] PlannerArgs = ["--Planner:Models:0", RepositoryPaths.ShippedModel, "--Planner:ContextTokens", "1024"];

    /// <summary>
    /// A planner of the shipped model following the registry, keeping its placements in the test's Redis or in memory;
    /// one ring over every node unless <paramref name="replicas"/> says otherwise (the tiny model fits every test node).
    /// </summary>
    private (Contracts.V1.Planner.PlannerClient Client, ServiceProcess Process, Health.HealthClient Health) StartPlanner(bool inRedis, string replicas = "1", string quantize = "none")
    {
        var (channel, process, _) = Start("Exo.Planner.dll", PlannerEnvironment(inRedis ? redis.Configuration : null),
            [.. PlannerArgs, "--Planner:Replicas", replicas, "--Planner:Quantize", quantize]);
        return (new Contracts.V1.Planner.PlannerClient(channel), process, new Health.HealthClient(channel));
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

    private static NodeInfo Node(string id, double gb, params string[] models)
    {
        var node = new NodeInfo
        {
            NodeId = id,
            GrpcEndpoint = $"http://127.0.0.1:{6000 + id.Length}",
            Host = id,
            Backend = "cpu",
            TotalMemoryBytes = (ulong)(gb * 1e9),
            AvailableMemoryBytes = (ulong)(gb * 1e9),
        };
        node.ModelsOnDisk.AddRange(models.Length == 0 ? [Model] : models);
        return node;
    }

    /// <summary>The reason the planner gives for having no placement of the model, once it is one that says <paramref name="containing"/>.</summary>
    private static Task<string> Problem(Contracts.V1.Planner.PlannerClient planner, string containing) => Eventually(async () =>
    {
        var problem = await Problem(planner);
        return problem.Contains(containing, StringComparison.Ordinal) ? problem : throw new RpcException(new Status(StatusCode.Unavailable, problem));
    });

    /// <summary>The reason the planner gives for having no placement of the model, once it gives one.</summary>
    private static Task<string> Problem(Contracts.V1.Planner.PlannerClient planner) => Eventually(async () =>
    {
        try
        {
            await planner.GetPlacementAsync(new GetPlacementRequest { ModelId = Model });
            throw new InvalidOperationException("expected no placement");
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.FailedPrecondition)
        {
            return e.Status.Detail;
        }
    });

    /// <summary>The next placement on the watch with the given number of stages in one ring (0: none).</summary>
    private static Task<Contracts.V1.Placement> NextWithStages(AsyncServerStreamingCall<Contracts.V1.Placement> watch, int count) =>
        Next(watch, p => Stages(p).Count == count);

    /// <summary>The next placement on the watch with the given number of rings.</summary>
    private static Task<Contracts.V1.Placement> NextWithRings(AsyncServerStreamingCall<Contracts.V1.Placement> watch, int count) =>
        Next(watch, p => p.Rings.Count == count);

    private static async Task<Contracts.V1.Placement> Next(AsyncServerStreamingCall<Contracts.V1.Placement> watch, Func<Contracts.V1.Placement, bool> wanted)
    {
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (await watch.ResponseStream.MoveNext(patience.Token))
        {
            if (wanted(watch.ResponseStream.Current)) return watch.ResponseStream.Current;
        }

        throw new InvalidOperationException("the placement stream ended");
    }

    /// <summary>The stages of a placement of at most one ring.</summary>
    private static IReadOnlyList<Stage> Stages(Contracts.V1.Placement placement) => placement.Rings.Count == 0 ? [] : Assert.Single(placement.Rings).Stages;

    /// <summary>The shipped model's placements; disposing the call ends the watch.</summary>
    private static AsyncServerStreamingCall<Contracts.V1.Placement> Watch(Contracts.V1.Planner.PlannerClient planner) =>
        planner.WatchPlacements(new WatchPlacementsRequest { ModelId = Model });

    [Fact]
    public async Task JoiningAndLeavingNodesReplanTheRing()
    {
        var registry = StartRegistry();
        var (planner, _, _) = StartPlanner(inRedis: false);

        // Before any worker joins, the planner says why it has no placement.
        Assert.Contains("no shard worker is in the cluster", await Problem(planner));

        using var watch = Watch(planner);
        await Eventually(async () => await registry.RegisterAsync(new RegisterRequest { Node = Node("big", 4), InstanceToken = "1" }));
        var one = await NextWithStages(watch, 1);
        Assert.Equal(("big", 0u, 8u), (Stages(one)[0].NodeId, Stages(one)[0].LayerStart, Stages(one)[0].LayerEnd));

        await registry.RegisterAsync(new RegisterRequest { Node = Node("small", 2), InstanceToken = "2" });
        var two = await NextWithStages(watch, 2);
        Assert.True(two.Version > one.Version);
        Assert.Equal(["big", "small"], Stages(two).Select(s => s.NodeId));
        Assert.Equal(0u, Stages(two)[0].LayerStart);
        Assert.Equal(Stages(two)[0].LayerEnd, Stages(two)[1].LayerStart);
        Assert.Equal(8u, Stages(two)[1].LayerEnd);
        Assert.True(Stages(two)[0].LayerEnd > 4, "the node with more memory holds more layers");
        Assert.Equal("http://127.0.0.1:6005", Stages(two)[1].GrpcEndpoint);

        await registry.DeregisterAsync(new DeregisterRequest { NodeId = "big", LeaseId = "1" });
        var left = await NextWithStages(watch, 1);
        Assert.Equal("small", Stages(left)[0].NodeId);
        Assert.True(left.Version > two.Version);
        Assert.Equal(left, await planner.GetPlacementAsync(new GetPlacementRequest { ModelId = Model }));
    }

    [Fact]
    public async Task WithQuantizeSetOnlyNodesThatCanLoadTheTypeArePlacedAndThePlacementCarriesIt()
    {
        var registry = StartRegistry();
        var (planner, _, _) = StartPlanner(inRedis: false, quantize: "q8_0");
        using var watch = Watch(planner);

        // A worker from before the setting lists no types: it would load the weights as stored, which the plan did not size.
        await Eventually(async () => await registry.RegisterAsync(new RegisterRequest { Node = Node("old", 4), InstanceToken = "1" }));
        Assert.Contains("can load weights quantized to q8_0 (Planner__Quantize): upgrade the workers", await Problem(planner, "q8_0"));

        var current = Node("new", 1);
        current.WeightTypes.AddRange(["q8_0", "q4_0"]);
        await registry.RegisterAsync(new RegisterRequest { Node = current, InstanceToken = "2" });
        var placed = await NextWithStages(watch, 1);
        Assert.Equal(("new", "q8_0"), (Stages(placed)[0].NodeId, placed.WeightType));
    }

    [Fact]
    public async Task MeasuredNodesAreSplitBySpeedAndThePredictionIsLogged()
    {
        var registry = StartRegistry();
        var (planner, process, _) = StartPlanner(inRedis: false);
        using var watch = Watch(planner);

        // By memory the slow node would run most layers; by speed it runs one (4.5 ms at 1 GB/s), as the first stage,
        // and the fast node the other seven and the tied embedding matrix as the head (0.1 ms at 400 GB/s).
        var fast = Node("fast", 1);
        fast.BandwidthBytesPerSecond = 400e9;
        var slow = Node("slow", 4);
        slow.BandwidthBytesPerSecond = 1e9;
        slow.Flops = 10e9;
        await Eventually(async () => await registry.RegisterAsync(new RegisterRequest { Node = slow, InstanceToken = "1" }));
        Assert.Equal("slow", Assert.Single(Stages(await NextWithStages(watch, 1))).NodeId);
        await registry.RegisterAsync(new RegisterRequest { Node = fast, InstanceToken = "2" });
        var bySpeed = await NextWithStages(watch, 2);
        Assert.Equal([("slow", 0u, 1u), ("fast", 1u, 8u)], Stages(bySpeed).Select(s => (s.NodeId, s.LayerStart, s.LayerEnd)));
        await process.WaitForLogAsync($"Placement v{bySpeed.Version} of exo-tiny: slow [0, 1), fast [1, 8) (predicted 4.6 ms/token, slowest stage 4.5 ms)", TimeSpan.FromSeconds(10));

        // A node that has not measured itself sends the planner back to memory for the whole ring.
        await registry.RegisterAsync(new RegisterRequest { Node = Node("plain", 2), InstanceToken = "3" });
        var byMemory = await NextWithStages(watch, 3);
        Assert.Equal(["slow", "plain", "fast"], Stages(byMemory).Select(s => s.NodeId));
        await process.WaitForLogAsync($"Placement v{byMemory.Version} of exo-tiny: slow [0, 5), plain [5, 7), fast [7, 8) (split by memory", TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task OnlyNodesWithTheModelOnDiskArePlaced()
    {
        var registry = StartRegistry();
        var (planner, _, _) = StartPlanner(inRedis: false);
        using var watch = Watch(planner);

        await Eventually(async () => await registry.RegisterAsync(new RegisterRequest { Node = Node("big", 8, "qwen2.5-0.5b"), InstanceToken = "1" }));
        Assert.Equal("no worker has model 'exo-tiny' in its models directory", await Problem(planner, containing: "models directory"));

        await registry.RegisterAsync(new RegisterRequest { Node = Node("small", 2), InstanceToken = "2" });
        Assert.Equal("small", Assert.Single(Stages(await NextWithStages(watch, 1))).NodeId);

        // The big node gets the model (registering again from the same instance updates it): now it takes part.
        await registry.RegisterAsync(new RegisterRequest { Node = Node("big", 8, "qwen2.5-0.5b", Model), InstanceToken = "1" });
        Assert.Equal(["big", "small"], Stages(await NextWithStages(watch, 2)).Select(s => s.NodeId));
    }

    [Fact]
    public async Task ANodeThatFetchesModelsIsPlacedWhileAPeerHasTheModel()
    {
        var registry = StartRegistry();
        var (planner, _, _) = StartPlanner(inRedis: false);
        using var watch = Watch(planner);

        // Alone it has nothing to copy the model from: no ring.
        var fetcher = Node("fetcher", 8, "another-model");
        fetcher.FetchesModels = true;
        await Eventually(async () => await registry.RegisterAsync(new RegisterRequest { Node = fetcher, InstanceToken = "1" }));
        Assert.Equal("no worker has model 'exo-tiny' in its models directory", await Problem(planner, containing: "models directory"));

        // A node with the model joins: both take part, the fetcher copying its layers from the holder.
        await registry.RegisterAsync(new RegisterRequest { Node = Node("holder", 2), InstanceToken = "2" });
        Assert.Equal(["fetcher", "holder"], Stages(await NextWithStages(watch, 2)).Select(s => s.NodeId));

        // The holder leaves: nobody is left to copy from, so no ring is planned over the fetcher.
        await registry.DeregisterAsync(new DeregisterRequest { NodeId = "holder", LeaseId = "2" });
        Assert.Equal("no worker has model 'exo-tiny' in its models directory", (await NextWithStages(watch, 0)).Problem);
    }

    [Fact]
    public async Task AMemoryMoveUnderTenPercentDoesNotReplan()
    {
        var registry = StartRegistry();
        var (planner, _, _) = StartPlanner(inRedis: false);
        using var watch = Watch(planner);

        // 8 layers by memory 2.75 : 1.25 is 5.5 : 2.5, a tie the bigger node wins; 5% more on the small node would tip it.
        await Eventually(async () => await registry.RegisterAsync(new RegisterRequest { Node = Node("big", 2.75), InstanceToken = "1" }));
        await registry.RegisterAsync(new RegisterRequest { Node = Node("small", 1.25), InstanceToken = "2" });
        var before = await NextWithStages(watch, 2);
        Assert.Equal([6u, 8u], Stages(before).Select(s => s.LayerEnd));

        await registry.RegisterAsync(new RegisterRequest { Node = Node("small", 1.3125), InstanceToken = "2" });
        // Longer than the re-plan debounce (300 ms quiet), so a re-plan would have been published by now.
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Equal(before, await planner.GetPlacementAsync(new GetPlacementRequest { ModelId = Model }));

        await registry.RegisterAsync(new RegisterRequest { Node = Node("small", 1.5), InstanceToken = "2" });
        var after = await NextWithStages(watch, 2);
        Assert.Equal([5u, 8u], Stages(after).Select(s => s.LayerEnd));
        Assert.True(after.Version > before.Version);
    }

    [Fact]
    public async Task ARestartedPlannerServesTheStoredPlacementAtOnceAndKeepsCountingVersions()
    {
        var registry = StartRegistry();
        var (first, firstProcess, _) = StartPlanner(inRedis: true);
        Contracts.V1.Placement placed;
        using (var watch = Watch(first))
        {
            await Eventually(async () => await registry.RegisterAsync(new RegisterRequest { Node = Node("big", 4), InstanceToken = "1" }));
            placed = await NextWithStages(watch, 1);
        }

        _processes.Remove(firstProcess);
        firstProcess.Dispose();
        var (restarted, _, health) = StartPlanner(inRedis: true);
        // No waiting: the placement is there as soon as the planner listens. A re-planned one would carry a newer version.
        Assert.Equal(placed, await restarted.GetPlacementAsync(new GetPlacementRequest { ModelId = Model }));
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);

        using var watchAgain = Watch(restarted);
        await registry.RegisterAsync(new RegisterRequest { Node = Node("small", 2), InstanceToken = "2" });
        var replanned = await NextWithStages(watchAgain, 2);
        Assert.True(replanned.Version > placed.Version, $"version {replanned.Version} after a restart does not follow {placed.Version}");
    }

    [Fact]
    public async Task ReplicasKeepTheirVersionsAsOtherNodesJoinAndLeave()
    {
        var registry = StartRegistry();
        var (planner, process, _) = StartPlanner(inRedis: false, replicas: "auto");
        using var watch = Watch(planner);

        // The tiny model fits each node: a ring per node, the ones already there untouched by each change.
        await Eventually(async () => await registry.RegisterAsync(new RegisterRequest { Node = Node("a", 2), InstanceToken = "1" }));
        var a = Assert.Single((await NextWithRings(watch, 1)).Rings);
        await registry.RegisterAsync(new RegisterRequest { Node = Node("bb", 2), InstanceToken = "2" });
        var two = await NextWithRings(watch, 2);
        Assert.Equal(a, two.Rings[0]);
        Assert.Equal([("bb", 0u, 8u)], two.Rings[1].Stages.Select(s => (s.NodeId, s.LayerStart, s.LayerEnd)));
        Assert.True(two.Rings[1].Version > a.Version && two.Version >= two.Rings[1].Version);
        await process.WaitForLogAsync($"Placement v{two.Version} of exo-tiny: ring v{a.Version}: a [0, 8) (split by memory", TimeSpan.FromSeconds(10));

        await registry.RegisterAsync(new RegisterRequest { Node = Node("ccc", 2), InstanceToken = "3" });
        var three = await NextWithRings(watch, 3);
        Assert.Equal(two.Rings, three.Rings.Take(2));

        await registry.DeregisterAsync(new DeregisterRequest { NodeId = "bb", LeaseId = "2" });
        var left = await NextWithRings(watch, 2);
        Assert.Equal([three.Rings[0], three.Rings[2]], left.Rings);
        Assert.True(left.Version > three.Version);
    }

    [Fact]
    public void AReplicasSettingThatIsNotAutoOrAPositiveIntegerStopsThePlanner()
    {
        var process = ServiceProcess.Start("Exo.Planner.dll", [.. ServiceEndpoints.Free().Args, .. PlannerArgs, "--Planner:Replicas", "0"], PlannerEnvironment(null));
        _processes.Add(process);

        Assert.NotEqual(0, process.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.Contains("Planner:Replicas (Planner__Replicas) is '0': set it to auto", process.Log);
    }

    [Fact]
    public void APlannerThatCannotReachItsRedisStopsAtOnceSayingWhere()
    {
        var nobody = Ports.Free();
        var process = ServiceProcess.Start("Exo.Planner.dll", [.. ServiceEndpoints.Free().Args, .. PlannerArgs], PlannerEnvironment($"127.0.0.1:{nobody}"));
        _processes.Add(process);

        Assert.NotEqual(0, process.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.Contains($"cannot reach Redis at 127.0.0.1:{nobody}", process.Log);
        Assert.DoesNotContain("Now listening", process.Log);
    }

    public void Dispose()
    {
        foreach (var channel in _channels) channel.Dispose();
        foreach (var process in _processes) process.Dispose();
    }
}
