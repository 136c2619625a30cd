using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Exo.AppHost;

/// <summary>What the gateway's <c>GET /api/cluster</c> says, in one line: whether the model is loaded everywhere, and where.</summary>
public sealed record ClusterStatus(bool Ready, string Summary)
{
    /// <summary>
    /// Reads the gateway's cluster view: <c>healthy</c>, <c>nodes[]</c> and <c>placements[]</c> (model, version, ready, problem,
    /// rings, each with stages with endpoint, nodeId, layerStart, layerEnd). Stages are named by the worker whose gRPC port
    /// they use, else by node id; rings are numbered when there are several.
    /// </summary>
    public static ClusterStatus Parse(string json, IReadOnlyDictionary<int, string> workerByPort, int workers)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            var healthy = root.GetProperty("healthy").GetBoolean();
            var nodes = root.GetProperty("nodes").GetArrayLength();
            var placements = root.GetProperty("placements").EnumerateArray().Select(p => Placement(p, workerByPort)).ToList();
            // Every worker must have joined and been given layers (or every layer of every ring have a worker of its own): a
            // ring made before the last worker registered is ready, but not yet the cluster the user asked for.
            if (healthy && placements.Count > 0 && placements.All(p => p.Stages >= Math.Min(workers, p.Layers)))
                return new ClusterStatus(true, string.Join("; ", placements.Select(p => p.Text)));

            var state = placements.Count == 0 ? "no placement yet" : string.Join("; ", placements.Select(p => p.Text));
            return new ClusterStatus(false, $"{nodes} of {workers} workers registered, {state}");
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            return new ClusterStatus(false, $"the gateway's /api/cluster answer is not understood ({e.Message})");
        }
    }

    /// <summary>The placement's line, whether it serves, its stages over all rings, and the most stages its rings could use.</summary>
    private static (bool Ready, string Text, int Stages, int Layers) Placement(JsonElement placement, IReadOnlyDictionary<int, string> workerByPort)
    {
        var rings = placement.GetProperty("rings").EnumerateArray().Select(ring => ring.GetProperty("stages").EnumerateArray().Select(stage =>
        {
            var endpoint = stage.GetProperty("endpoint").GetString() ?? "";
            var name = Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) && workerByPort.TryGetValue(uri.Port, out var worker)
                ? worker
                : stage.GetProperty("nodeId").GetString();
            return (Text: $"[{stage.GetProperty("layerStart").GetInt32()}, {stage.GetProperty("layerEnd").GetInt32()}) {name}", End: stage.GetProperty("layerEnd").GetInt32());
        }).ToList()).ToList();
        var model = placement.GetProperty("model").GetString();
        var ready = placement.GetProperty("ready").GetBoolean();
        // The planner says why a model has no rings (too little memory, no worker has it on disk): that is what the user needs.
        if (!ready && placement.TryGetProperty("problem", out var problem) && problem.ValueKind == JsonValueKind.String) return (false, $"{model}: {problem.GetString()}", 0, 0);

        var stages = rings.Sum(r => r.Count);
        var layers = rings.Count == 0 ? 0 : rings.Max(r => r.Count == 0 ? 0 : r.Max(s => s.End));
        var where = rings.Count == 1
            ? $"layers {string.Join(", ", rings[0].Select(s => s.Text))}"
            : $"{rings.Count} rings: " + string.Join("; ", rings.Select((r, i) => $"ring {i + 1} layers {string.Join(", ", r.Select(s => s.Text))}"));
        return (ready, $"{model} on {stages} worker{(stages == 1 ? "" : "s")}, {where}{(ready ? "" : " (loading)")}", stages, layers * rings.Count);
    }
}

/// <summary>
/// Once the gateway is healthy, prints where to reach the cluster, then polls the gateway until the model is loaded on
/// its workers, saying what it waits for as that changes, and warns (without stopping anything) when that takes longer
/// than the ready timeout. These are plain lines on standard output, the ones a user and a script look for.
/// </summary>
public sealed class ClusterReadiness(
    AppHostSettings settings, IResourceBuilder<ProjectResource> gateway, IReadOnlyList<IResourceBuilder<ProjectResource>> workers,
    ResourceNotificationService notifications) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Reminder = TimeSpan.FromSeconds(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await notifications.WaitForResourceHealthyAsync(gateway.Resource.Name, stoppingToken);
            var local = gateway.GetEndpoint(ServiceEndpoints.Http).Url;
            var url = settings.Public ? $"http://{Environment.MachineName}:{settings.Port}" : local;
            Console.WriteLine($"web chat: {url}/");
            Console.WriteLine($"API base: {url}/v1");
            if (settings.Public)
            {
                Console.WriteLine($"workers on other machines: deploy/linux/install-worker.sh (or deploy/macos/) {Environment.MachineName} asks for the "
                    + $"cluster's join secret, which is in {ClusterSecretFile.Location(settings.DataDir)}");
            }

            await WatchAsync(new Uri(local), stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The AppHost stops before the cluster was ready.
        }
    }

    private async Task WatchAsync(Uri gatewayUrl, CancellationToken cancellationToken)
    {
        var workerByPort = workers.ToDictionary(w => w.GetEndpoint(ServiceEndpoints.Grpc).Port, w => w.Resource.Name);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        if (settings.ApiKeys.Count > 0) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", settings.ApiKeys[0]);
        var clock = Stopwatch.StartNew();
        var said = "";
        var saidAt = TimeSpan.Zero;
        var warned = false;
        while (true)
        {
            var status = await ProbeAsync(http, gatewayUrl, workerByPort, cancellationToken);
            if (status.Ready)
            {
                Console.WriteLine($"ready: {status.Summary} ({clock.Elapsed.TotalSeconds:0.0} s)");
                return;
            }

            if (status.Summary != said || clock.Elapsed - saidAt >= Reminder)
            {
                Console.WriteLine($"waiting for the cluster ({clock.Elapsed.TotalSeconds:0} s): {status.Summary}");
                (said, saidAt) = (status.Summary, clock.Elapsed);
            }

            if (!warned && clock.Elapsed >= settings.ReadyTimeout)
            {
                var logs = settings.DashboardPort is null ? "the services' logs above" : "the services' logs in the dashboard";
                Console.WriteLine($"warning: the cluster is not ready after {settings.ReadyTimeout.TotalSeconds:0} s ({status.Summary}); it keeps running: see {logs}, Ctrl-C stops it");
                warned = true;
            }

            await Task.Delay(Interval, cancellationToken);
        }
    }

    private async Task<ClusterStatus> ProbeAsync(HttpClient http, Uri gatewayUrl, IReadOnlyDictionary<int, string> workerByPort, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await http.GetAsync(new Uri(gatewayUrl, "/api/cluster"), cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            return response.IsSuccessStatusCode
                ? ClusterStatus.Parse(body, workerByPort, settings.Workers)
                : new ClusterStatus(false, $"GET /api/cluster answered {(int)response.StatusCode}");
        }
        catch (Exception e) when (e is HttpRequestException || e is TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return new ClusterStatus(false, $"GET /api/cluster failed: {e.Message}");
        }
    }
}
