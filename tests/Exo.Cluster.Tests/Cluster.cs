using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;

namespace Exo.Cluster.Tests;

/// <summary>One stage of a placement as the API's /api/cluster reports it.</summary>
public sealed record StageInfo(string NodeId, string Endpoint, int LayerStart, int LayerEnd);

/// <summary>One ring of a placement as the API's /api/cluster reports it, with the requests the API has open on it.</summary>
public sealed record RingInfo(long Version, bool Ready, int Requests, IReadOnlyList<StageInfo> Stages);

/// <summary>The shipped model's placement as the API sees it.</summary>
public sealed record PlacementInfo(long Version, bool Ready, IReadOnlyList<RingInfo> Rings, string? Problem)
{
    /// <summary>The stages of every ring, in ring order: a cluster of one ring (<see cref="Cluster.Replicas"/> 1) has just its own.</summary>
    public IReadOnlyList<StageInfo> Stages => [.. Rings.SelectMany(r => r.Stages)];
}

/// <summary>
/// A whole cluster on loopback, every part a real process: redis-server (keeping an append-only file, as the AppHost's
/// does), the registry, the planner, shard workers and the API service, wired by the environment variables Aspire
/// would set, the cluster's join secret included.
/// </summary>
public sealed class Cluster : IAsyncLifetime
{
    public const string Model = "exo-tiny";
    private readonly RedisServer _redis;
    private readonly List<ServiceProcess> _services = [];
    private readonly Dictionary<ServiceProcess, (string Assembly, string[] Args, Dictionary<string, string> Environment)> _commands = [];
    private readonly string _dataRoot = Directory.CreateTempSubdirectory("exo-cluster-").FullName;
    private ServiceEndpoints _registry = null!;
    private ServiceEndpoints _planner = null!;
    private int _nextWorker;

    public Cluster() => _redis = new RedisServer { DataDirectory = Path.Combine(_dataRoot, "redis") };

    /// <summary>The planner's gRPC address.</summary>
    public string Planner => _planner.Grpc;

    /// <summary>The join secret every member is given (<c>Cluster__Secret</c>).</summary>
    public string Secret { get; } = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));

    /// <summary>The API service, which drives the rings (the gateway in front of it has tests of its own).</summary>
    public Uri Api { get; private set; } = null!;

    /// <summary>The API service's process, whose log tells what it did about a fault.</summary>
    public ServiceProcess ApiProcess { get; private set; } = null!;

    public ServiceProcess RegistryProcess { get; private set; } = null!;

    public ServiceProcess PlannerProcess { get; private set; } = null!;

    public List<ServiceProcess> Workers { get; } = [];

    /// <summary>Each initial worker's --backend (all "cpu" when empty).</summary>
    public IReadOnlyList<string> Backends { get; init; } = [];

    /// <summary>How many workers start with the cluster.</summary>
    public int InitialWorkers { get; init; } = 3;

    /// <summary>
    /// The planner's <c>Planner:Replicas</c>. One ring over every worker unless a test asks otherwise: the shipped model
    /// fits each worker, so <c>auto</c> would make a ring of each.
    /// </summary>
    public string Replicas { get; init; } = "1";

    /// <summary>Memory every worker offers (its available memory, or its GPU's, when null).</summary>
    public int? WorkerMemoryMegabytes { get; init; }

    /// <summary>Each worker's gRPC address, for asking its stages directly.</summary>
    public Dictionary<ServiceProcess, string> WorkerEndpoints { get; } = [];

    public IEnumerable<ServiceProcess> All => _services.Concat(Workers);

    /// <summary>Quiet logs, and the join secret (none when null), as a member is given it.</summary>
    private static Dictionary<string, string> Configured(Dictionary<string, string> environment, string? secret)
    {
        if (secret is not null) environment["Cluster__Secret"] = secret;
        environment["Logging__Console__FormatterName"] = "simple";
        environment["Logging__Console__FormatterOptions__SingleLine"] = "true";
        return environment;
    }

    public async Task InitializeAsync()
    {
        await _redis.InitializeAsync();
        (_registry, _planner) = (ServiceEndpoints.Free(), ServiceEndpoints.Free());
        RegistryProcess = Start("Exo.Registry.dll", _registry.Args, new() { ["ConnectionStrings__redis"] = _redis.Configuration });
        PlannerProcess = Start("Exo.Planner.dll", _planner.Args, new()
        {
            ["ConnectionStrings__redis"] = _redis.Configuration,
            ["services__registry__grpc__0"] = _registry.Grpc,
            ["Planner__Models__0"] = RepositoryPaths.ShippedModel,
            ["Planner__Replicas"] = Replicas,
        });
        for (var i = 0; i < InitialWorkers; i++) StartWorker(i < Backends.Count ? Backends[i] : "cpu");
        ApiProcess = StartApi();
        foreach (var service in All) service.WaitUntilListening(TimeSpan.FromSeconds(90));
        Api = ApiProcess.WaitUntilListening(TimeSpan.FromSeconds(90));
        await WaitForPlacementAsync(p => p.Ready && p.Stages.Count == InitialWorkers, TimeSpan.FromSeconds(120));
    }

    /// <summary>Starts an API service (the first is <see cref="Api"/>; more are replicas sharing the rings); wait for it to listen.</summary>
    public ServiceProcess StartApi() => Start("Exo.Api.dll", [$"--Kestrel:Endpoints:http:Url=http://127.0.0.1:{Ports.Free()}"], new()
    {
        ["services__registry__grpc__0"] = _registry.Grpc,
        ["services__planner__grpc__0"] = _planner.Grpc,
        ["Api__Models__0"] = RepositoryPaths.ShippedModel,
    });

    /// <summary>Starts the gateway in front of <see cref="Api"/>, as the AppHost does, once it listens.</summary>
    public (ServiceProcess Process, Uri Address) StartGateway()
    {
        var gateway = Start("Exo.Gateway.dll", ["--Kestrel:Endpoints:http:Url=http://127.0.0.1:0"], new()
        {
            ["services__api__http__0"] = Api.ToString().TrimEnd('/'),
        });
        return (gateway, gateway.WaitUntilListening(TimeSpan.FromSeconds(90)));
    }

    /// <summary>Starts the registry or the planner again, as it was started, on the same address; it must have exited.</summary>
    public ServiceProcess Restart(ServiceProcess service)
    {
        Assert.True(service.HasExited, "only a service that has stopped is started again");
        var (assembly, args, environment) = _commands[service];
        _services.Remove(service);
        var process = Start(assembly, args, environment);
        if (service == RegistryProcess) RegistryProcess = process;
        if (service == PlannerProcess) PlannerProcess = process;
        process.WaitUntilListening(TimeSpan.FromSeconds(60));
        return process;
    }

    /// <summary>Kills the planner, as a crash would, and starts it again on the same ports.</summary>
    public async Task RestartPlannerAsync()
    {
        PlannerProcess.Dispose();
        Restart(PlannerProcess);
        await WaitUntilHealthyAsync(_planner);
    }

    /// <summary>
    /// Restarts Redis on the same port, with its data or empty, and waits until the registry and the planner answer
    /// healthy again (their health includes Redis), so what the test does next reaches Redis.
    /// </summary>
    public async Task RestartRedisAsync(bool keepData)
    {
        await _redis.RestartAsync(keepData);
        await WaitUntilHealthyAsync(_registry);
        await WaitUntilHealthyAsync(_planner);
    }

    private static async Task WaitUntilHealthyAsync(ServiceEndpoints service)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var health = await http.GetAsync($"{service.Http}/health");
                if (health.IsSuccessStatusCode) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"{service.Http}/health did not answer healthy within 60 s");
    }

    private ServiceProcess Start(string assembly, string[] args, Dictionary<string, string> environment)
    {
        var process = ServiceProcess.Start(assembly, args, Configured(environment, Secret));
        _services.Add(process);
        _commands[process] = (assembly, args, environment);
        return process;
    }

    /// <summary>
    /// Starts one more shard worker with its own data directory, as a new machine joining would; with
    /// <paramref name="withoutModels"/>, its models directory is empty, so it fetches the layers it is given from a peer.
    /// </summary>
    public ServiceProcess StartWorker(string backend = "cpu", int kvCacheMegabytes = 256, bool withoutModels = false)
    {
        var endpoints = ServiceEndpoints.Free();
        var environment = WorkerEnvironment(backend, kvCacheMegabytes, Secret);
        if (withoutModels) environment["ShardWorker__ModelsDir"] = Directory.CreateDirectory(Path.Combine(environment["ShardWorker__DataDir"], "models")).FullName;
        var worker = ServiceProcess.Start("Exo.ShardWorker.dll", endpoints.Args, environment);
        Workers.Add(worker);
        WorkerEndpoints[worker] = endpoints.Grpc;
        return worker;
    }

    /// <summary>
    /// Starts a shard worker that tries to join with <paramref name="secret"/> (none when null) rather than the cluster's;
    /// it is not one of <see cref="Workers"/>, and the caller disposes it.
    /// </summary>
    public ServiceProcess StartOutsider(string? secret) => ServiceProcess.Start("Exo.ShardWorker.dll", ServiceEndpoints.Free().Args, WorkerEnvironment("cpu", 256, secret));

    private Dictionary<string, string> WorkerEnvironment(string backend, int kvCacheMegabytes, string? secret)
    {
        var environment = new Dictionary<string, string>
        {
            ["services__registry__grpc__0"] = _registry.Grpc,
            ["services__planner__grpc__0"] = _planner.Grpc,
            ["ShardWorker__DataDir"] = Path.Combine(_dataRoot, $"worker-{++_nextWorker}"),
            ["ShardWorker__ModelsDir"] = Path.GetDirectoryName(RepositoryPaths.ShippedModel)!,
            ["ShardWorker__KvCacheMegabytes"] = $"{kvCacheMegabytes}",
            ["ShardWorker__Backend"] = backend,
        };
        if (WorkerMemoryMegabytes is { } mb) environment["ShardWorker__MemoryMegabytes"] = $"{mb}";
        return Configured(environment, secret);
    }

    /// <summary>The worker process that serves a stage.</summary>
    public ServiceProcess WorkerOf(StageInfo stage) => WorkerEndpoints.Single(w => w.Value.TrimEnd('/') == stage.Endpoint.TrimEnd('/')).Key;

    /// <summary>The shipped model's placement as <paramref name="api"/> (by default <see cref="Api"/>) sees it.</summary>
    public Task<PlacementInfo?> PlacementAsync(Uri? api = null) => PlacementAt(api ?? Api);

    /// <summary>The shipped model's placement as the API at <paramref name="api"/> sees it.</summary>
    public static async Task<PlacementInfo?> PlacementAt(Uri api)
    {
        using var http = new HttpClient();
        var cluster = await http.GetFromJsonAsync<JsonElement>(new Uri(api, "/api/cluster"));
        foreach (var p in cluster.GetProperty("placements").EnumerateArray())
        {
            if (p.GetProperty("model").GetString() != Model) continue;
            var rings = p.GetProperty("rings").EnumerateArray().Select(r => new RingInfo(r.GetProperty("version").GetInt64(), r.GetProperty("ready").GetBoolean(),
                r.GetProperty("requests").GetInt32(), [.. r.GetProperty("stages").EnumerateArray()
                    .Select(s => new StageInfo(s.GetProperty("nodeId").GetString()!, s.GetProperty("endpoint").GetString()!, s.GetProperty("layerStart").GetInt32(), s.GetProperty("layerEnd").GetInt32()))]));
            return new PlacementInfo(p.GetProperty("version").GetInt64(), p.GetProperty("ready").GetBoolean(), [.. rings], p.GetProperty("problem").GetString());
        }

        return null;
    }

    /// <summary>Waits until the API's cluster view lists <paramref name="count"/> nodes (registered, leases live).</summary>
    public async Task WaitForNodesAsync(int count, TimeSpan timeout)
    {
        using var http = new HttpClient();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while ((await http.GetFromJsonAsync<JsonElement>(new Uri(Api, "/api/cluster"))).GetProperty("nodes").GetArrayLength() != count)
        {
            if (clock.Elapsed > timeout) throw new TimeoutException($"the cluster did not reach {count} nodes in {timeout.TotalSeconds} s");
            await Task.Delay(50);
        }
    }

    /// <summary>Polls the API's cluster view until the placement satisfies <paramref name="condition"/>.</summary>
    public Task<PlacementInfo> WaitForPlacementAsync(Func<PlacementInfo, bool> condition, TimeSpan timeout, Uri? api = null) =>
        WaitForPlacementAt(api ?? Api, condition, timeout, All);

    /// <summary>Polls the cluster view of the API at <paramref name="api"/> until the placement satisfies <paramref name="condition"/>; the error shows the ends of <paramref name="logs"/>' logs.</summary>
    public static async Task<PlacementInfo> WaitForPlacementAt(Uri api, Func<PlacementInfo, bool> condition, TimeSpan timeout, IEnumerable<ServiceProcess> logs)
    {
        var deadline = DateTime.UtcNow + timeout;
        PlacementInfo? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await PlacementAt(api);
                if (last is not null && condition(last)) return last;
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"the placement did not get there in {timeout.TotalSeconds} s; last seen: {last}\n"
            + string.Join("\n", logs.Select(s => s.Log.Length > 3000 ? s.Log[^3000..] : s.Log)));
    }

    public async Task DisposeAsync()
    {
        // Dependents first, and Redis last even if a process refuses to die: nothing may outlive the tests.
        try
        {
            foreach (var service in All.Reverse()) service.Dispose();
        }
        finally
        {
            await _redis.DisposeAsync();
            Directory.Delete(_dataRoot, recursive: true);
        }
    }
}
