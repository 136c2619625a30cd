using Exo.Contracts.V1;
using Grpc.Net.Client;

namespace Exo.Discovery.Tests;

/// <summary>
/// Real registries and shard workers in a network namespace of the test's own (mDNS on its loopback, nothing on the
/// machine's interfaces): registries advertise, workers given no address find them.
/// </summary>
public sealed class NetworkDiscoveryTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TempDirectory _data = new();
    private readonly List<ServiceProcess> _processes = [];
    private NetworkNamespace _space = null!;

    public async Task InitializeAsync() => _space = await NetworkNamespace.CreateAsync();

    public async Task DisposeAsync()
    {
        foreach (var process in _processes) process.Dispose();
        await _space.DisposeAsync();
        _data.Dispose();
    }

    [Fact]
    public async Task AWorkerJoinsTheClusterItNamesOrTheFirstByName()
    {
        var (_, inside) = await _space.ConnectAsync();
        // B is reached from this test process over the veth pair, so it advertises that address; A keeps its default
        // (its gRPC endpoint, 0.0.0.0, with this namespace's address on the advertised network: loopback).
        var b = StartRegistry("B", inside.ToString(), out var bPort);
        var a = StartRegistry("A", advertisedHost: null, out _);
        await a.WaitForLogAsync("Advertising Exo cluster A", Patience);
        await b.WaitForLogAsync("Advertising Exo cluster B", Patience);

        var chosen = StartWorker("--cluster", "B");
        var first = StartWorker();
        await chosen.WaitForLogAsync($"Found Exo cluster B on the local network: registry http://{inside}:{bPort}/", Patience);
        await chosen.WaitForLogAsync("Registered ", Patience);
        await first.WaitForLogAsync("Several Exo clusters answer (A, B); joining A", Patience);
        await first.WaitForLogAsync("Found Exo cluster A on the local network: registry http://127.0.0.1:", Patience);
        await first.WaitForLogAsync("Registered ", Patience);

        // B's own list, over gRPC from outside the namespace, holds exactly the worker that chose it.
        using var channel = GrpcChannel.ForAddress($"http://{inside}:{bPort}");
        var nodes = (await new Contracts.V1.Registry.RegistryClient(channel).ListAsync(new ListNodesRequest())).Nodes;
        Assert.Single(nodes);
        Assert.Contains($"Registered {nodes[0].NodeId}", chosen.Log);

        Assert.True(b.Terminate(TimeSpan.FromSeconds(15)), b.Log);
        Assert.Equal(0, b.WaitForExit(TimeSpan.FromSeconds(5))); // which also reads its output to the end
        Assert.Contains("Withdrew the advertisement of Exo cluster B", b.Log);
    }

    [Fact]
    public async Task AWorkerWaitsForAClusterAndStopsWhenToldWhileWaiting()
    {
        var early = StartWorker();
        await early.WaitForLogAsync("No Exo cluster found on the local network yet (listening for _exo._tcp on lo", Patience);

        var registry = StartRegistry("main", advertisedHost: null, out var port);
        await early.WaitForLogAsync($"Found Exo cluster main on the local network: registry http://127.0.0.1:{port}/", Patience);
        await early.WaitForLogAsync("Registered ", Patience);
        Assert.Contains("registered at", registry.Log);

        var picky = StartWorker("--cluster", "other");
        await picky.WaitForLogAsync("No Exo cluster named other on the local network yet; heard only: main", Patience);
        Assert.True(picky.Terminate(TimeSpan.FromSeconds(10)), picky.Log);
        Assert.Equal(0, picky.WaitForExit(TimeSpan.FromSeconds(5)));
        Assert.DoesNotContain("Registered", picky.Log);
    }

    /// <summary>A registry advertising cluster <paramref name="cluster"/>, its gRPC endpoint on every address of the namespace.</summary>
    private ServiceProcess StartRegistry(string cluster, string? advertisedHost, out int grpcPort)
    {
        grpcPort = Ports.Free();
        var environment = new Dictionary<string, string>
        {
            ["Registry__Advertise"] = "true",
            // No planner runs: the workers only have to register, which needs none.
            ["Registry__AdvertisedPlanner"] = "http://127.0.0.1:9",
            ["Cluster__Name"] = cluster,
        };
        if (advertisedHost is not null) environment["Registry__AdvertisedRegistry"] = $"http://{advertisedHost}:{grpcPort}";
        var registry = _space.Start("Exo.Registry.dll", [$"--Kestrel:Endpoints:http:Url=http://127.0.0.1:{Ports.Free()}", $"--Kestrel:Endpoints:grpc:Url=http://0.0.0.0:{grpcPort}"], Quiet(environment));
        _processes.Add(registry);
        return registry;
    }

    private ServiceProcess StartWorker(params string[] args)
    {
        var worker = _space.Start("Exo.ShardWorker.dll", [.. ServiceEndpoints.Free().Args, .. args], Quiet(new()
        {
            ["ShardWorker__DataDir"] = Path.Combine(_data.Path, $"worker-{_processes.Count}"),
            ["ShardWorker__Backend"] = "cpu",
            ["ShardWorker__KvCacheMegabytes"] = "64",
        }));
        _processes.Add(worker);
        return worker;
    }

    /// <summary>Single-line logs, and mDNS kept on the namespace's loopback (not on the veth pair to the test process).</summary>
    private static Dictionary<string, string> Quiet(Dictionary<string, string> environment)
    {
        environment["Discovery__Interface"] = "lo";
        environment["Logging__Console__FormatterName"] = "simple";
        environment["Logging__Console__FormatterOptions__SingleLine"] = "true";
        return environment;
    }
}
