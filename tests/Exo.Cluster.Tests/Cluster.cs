using System.Net.Http.Json;
using System.Text.Json;

namespace Exo.Cluster.Tests;

/// <summary>One stage of a placement as the API's /api/cluster reports it.</summary>
public sealed record StageInfo(string NodeId, int LayerStart, int LayerEnd);

/// <summary>The shipped model's placement as the API sees it.</summary>
public sealed record PlacementInfo(long Version, bool Ready, IReadOnlyList<StageInfo> Stages, string? Problem);

/// <summary>
/// A whole cluster on loopback, every part a real process: redis-server (keeping an append-only file, as the AppHost's
/// does), the registry, the planner, shard workers and the API service, wired by the environment variables Aspire
/// would set.
/// </summary>
public sealed class Cluster : IAsyncLifetime
{
    public const string Model = "exo-tiny";
    private readonly RedisServer _redis;
    private readonly List<ServiceProcess> _services = [];
    private readonly string _dataRoot = Directory.CreateTempSubdirectory("exo-cluster-").FullName;
    private ServiceEndpoints _registry = null!;
    private ServiceEndpoints _planner = null!;
    private ServiceProcess _plannerProcess = null!;
    private int _nextWorker;

    public Cluster() => _redis = new RedisServer { DataDirectory = Path.Combine(_dataRoot, "redis") };

    /// <summary>The API service, which drives the rings (the gateway in front of it has tests of its own).</summary>
    public Uri Api { get; private set; } = null!;

    public ServiceProcess ApiProcess { get; private set; } = null!;

    public List<ServiceProcess> Workers { get; } = [];

    /// <summary>Each initial worker's --backend (all "cpu" when empty).</summary>
    public IReadOnlyList<string> Backends { get; init; } = [];

    /// <summary>Memory every worker offers (its available memory, or its GPU's, when null).</summary>
    public int? WorkerMemoryMegabytes { get; init; }

    /// <summary>Each worker's gRPC address, for asking its stages directly.</summary>
    public Dictionary<ServiceProcess, string> WorkerEndpoints { get; } = [];

    public IEnumerable<ServiceProcess> All => _services.Concat(Workers);

    private static Dictionary<string, string> Quiet(Dictionary<string, string> environment)
    {
        environment["Logging__Console__FormatterName"] = "simple";
        environment["Logging__Console__FormatterOptions__SingleLine"] = "true";
        return environment;
    }

    public async Task InitializeAsync()
    {
        await _redis.InitializeAsync();
        (_registry, _planner) = (ServiceEndpoints.Free(), ServiceEndpoints.Free());
        Start("Exo.Registry.dll", _registry.Args, new() { ["ConnectionStrings__redis"] = _redis.Configuration });
        _plannerProcess = StartPlanner();
        for (var i = 0; i < 3; i++) StartWorker(i < Backends.Count ? Backends[i] : "cpu");
        ApiProcess = StartApi();
        foreach (var service in All) service.WaitUntilListening(TimeSpan.FromSeconds(90));
        Api = ApiProcess.WaitUntilListening(TimeSpan.FromSeconds(90));
        await WaitForPlacementAsync(p => p.Ready && p.Stages.Count == 3, TimeSpan.FromSeconds(120));
    }

    private ServiceProcess StartPlanner() => Start("Exo.Planner.dll", _planner.Args, new()
    {
        ["ConnectionStrings__redis"] = _redis.Configuration,
        ["services__registry__grpc__0"] = _registry.Grpc,
        ["Planner__Models__0"] = RepositoryPaths.ShippedModel,
    });

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

    /// <summary>Kills the planner, as a crash would, and starts it again on the same ports.</summary>
    public async Task RestartPlannerAsync()
    {
        _services.Remove(_plannerProcess);
        _plannerProcess.Dispose();
        _plannerProcess = StartPlanner();
        _plannerProcess.WaitUntilListening(TimeSpan.FromSeconds(90));
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
        var process = ServiceProcess.Start(assembly, args, Quiet(environment));
        _services.Add(process);
        return process;
    }

    /// <summary>Starts one more shard worker with its own data directory, as a new machine joining would.</summary>
    public ServiceProcess StartWorker(string backend = "cpu", int kvCacheMegabytes = 256)
    {
        var n = ++_nextWorker;
        var endpoints = ServiceEndpoints.Free();
        var environment = new Dictionary<string, string>
        {
            ["services__registry__grpc__0"] = _registry.Grpc,
            ["services__planner__grpc__0"] = _planner.Grpc,
            ["ShardWorker__DataDir"] = Path.Combine(_dataRoot, $"worker-{n}"),
            ["ShardWorker__ModelsDir"] = Path.GetDirectoryName(RepositoryPaths.ShippedModel)!,
            ["ShardWorker__KvCacheMegabytes"] = $"{kvCacheMegabytes}",
            ["ShardWorker__Backend"] = backend,
        };
        if (WorkerMemoryMegabytes is { } mb) environment["ShardWorker__MemoryMegabytes"] = $"{mb}";
        var worker = ServiceProcess.Start("Exo.ShardWorker.dll", endpoints.Args, Quiet(environment));
        Workers.Add(worker);
        WorkerEndpoints[worker] = endpoints.Grpc;
        return worker;
    }

    /// <summary>The shipped model's placement as <paramref name="api"/> (by default <see cref="Api"/>) sees it.</summary>
    public async Task<PlacementInfo?> PlacementAsync(Uri? api = null)
    {
        using var http = new HttpClient();
        var cluster = await http.GetFromJsonAsync<JsonElement>(new Uri(api ?? Api, "/api/cluster"));
        foreach (var p in cluster.GetProperty("placements").EnumerateArray())
        {
            if (p.GetProperty("model").GetString() != Model) continue;
            var stages = p.GetProperty("stages").EnumerateArray()
                .Select(s => new StageInfo(s.GetProperty("nodeId").GetString()!, s.GetProperty("layerStart").GetInt32(), s.GetProperty("layerEnd").GetInt32())).ToList();
            return new PlacementInfo(p.GetProperty("version").GetInt64(), p.GetProperty("ready").GetBoolean(), stages, p.GetProperty("problem").GetString());
        }

        return null;
    }

    /// <summary>Polls the API's cluster view until the placement satisfies <paramref name="condition"/>.</summary>
    public async Task<PlacementInfo> WaitForPlacementAsync(Func<PlacementInfo, bool> condition, TimeSpan timeout, Uri? api = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        PlacementInfo? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                last = await PlacementAsync(api);
                if (last is not null && condition(last)) return last;
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"the placement did not get there in {timeout.TotalSeconds} s; last seen: {last}\n"
            + string.Join("\n", All.Select(s => s.Log.Length > 3000 ? s.Log[^3000..] : s.Log)));
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
