using System.Runtime.InteropServices;
using Exo.AppHost;
using Exo.AppHost.Hosting;

// Ctrl-C and SIGTERM stop the cluster in order rather than killing the AppHost and orphaning its children.
using var stop = new CancellationTokenSource();
void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    stop.Cancel();
}

using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

return await AppHostCommand.InvokeAsync(args, RunAsync, stop.Token);

static async Task<int> RunAsync(AppHostSettings settings, CancellationToken cancellationToken)
{
    var log = ConsoleLog.ForConsole();
    var builder = new DistributedApplicationBuilder();

    var redis = builder.AddRedis("redis");
    if (redis is null) log.Warning("redis-server is not on PATH: the registry and planner keep the cluster's state in memory (Debian: apt-get install redis-server)");

    var registry = builder.AddService("registry", ServiceProjects.Registry)
        .WithGrpcEndpoint("Registry", settings.Public, settings.Public ? AppHostCommand.PublicRegistryPort : null)
        .WithReference(redis).WaitFor(redis);

    var planner = builder.AddService("planner", ServiceProjects.Planner)
        .WithGrpcEndpoint("Planner", settings.Public, settings.Public ? AppHostCommand.PublicPlannerPort : null)
        .WithEnvironment("Planner__Models__0", settings.Model)
        .WithReference(redis).WaitFor(redis)
        .WithReference(registry).WaitFor(registry);

    var workers = Enumerable.Range(1, settings.Workers).Select(i => builder.AddService($"worker-{i}", ServiceProjects.ShardWorker)
        .WithGrpcEndpoint("ShardWorker", settings.Public)
        // Each worker keeps its own node id file here between runs, so its identity in the cluster is stable.
        .WithEnvironment("ShardWorker__DataDir", Path.Combine(settings.DataDir, $"worker-{i}"))
        .WithEnvironment("ShardWorker__ModelsDir", Path.GetDirectoryName(settings.Model)!)
        .WithReference(registry).WaitFor(registry)
        .WithReference(planner).WaitFor(planner)).ToList();

    var gateway = builder.AddService("gateway", ServiceProjects.Gateway, settings.Port, host: settings.Public ? "0.0.0.0" : "localhost")
        .WithEnvironment("Gateway__Models__0", settings.Model)
        .WithReference(planner).WaitFor(planner)
        .WithReference(registry).WaitFor(registry);

    var app = builder.Build(log);
    var url = settings.Public ? new Uri($"http://{Environment.MachineName}:{settings.Port}") : gateway.Resource.GetEndpoint("http").Url;
    app.OnAllHealthy(token =>
    {
        log.Info($"web chat: {url}");
        log.Info($"API base: {new Uri(url, "/v1")}");
        var workerByPort = workers.ToDictionary(w => w.Resource.GetEndpoint("grpc").Port, w => w.Resource.Name);
        return new ClusterReadiness(new Uri($"http://127.0.0.1:{settings.Port}"), workerByPort, settings.Workers, settings.ReadyTimeout, log).WatchAsync(token);
    });
    return await app.RunAsync(cancellationToken);
}
