using Exo.AppHost;

return await AppHostCommand.InvokeAsync(args, async (settings, cancellationToken) =>
{
    var builder = DistributedApplication.CreateBuilder(AppHostOptions.For(settings, args));
    var local = settings.Public ? "0.0.0.0" : "127.0.0.1";

    // Infrastructure
    var redis = builder.AddClusterRedis("redis", Path.Combine(settings.DataDir, "redis"));

    // Services
    var registry = builder.AddProject<Projects.Exo_Registry>("registry").AsExoService()
        .WithGrpcEndpoint(settings.Public ? AppHostCommand.PublicRegistryPort : null, local)
        .WithRedis(redis);

    var planner = builder.AddProject<Projects.Exo_Planner>("planner").AsExoService()
        .WithGrpcEndpoint(settings.Public ? AppHostCommand.PublicPlannerPort : null, local)
        .WithEnvironment("Planner__Models__0", settings.Model)
        .WithRedis(redis)
        .WithReference(registry).WaitFor(registry);

    var workers = Enumerable.Range(1, settings.Workers).Select(i => builder.AddProject<Projects.Exo_ShardWorker>($"worker-{i}").AsExoService()
        .WithGrpcEndpoint(host: local)
        // Each worker keeps its node id here between runs, so its identity in the cluster is stable.
        .WithEnvironment("ShardWorker__DataDir", Path.Combine(settings.DataDir, $"worker-{i}"))
        .WithEnvironment("ShardWorker__ModelsDir", Path.GetDirectoryName(settings.Model)!)
        .WithReference(registry).WaitFor(registry)
        .WithReference(planner).WaitFor(planner)).ToList();

    var apis = Enumerable.Range(1, settings.ApiReplicas).Select(i => builder.AddProject<Projects.Exo_Api>(settings.ApiReplicas == 1 ? "api" : $"api-{i}").AsExoService()
        .WithEnvironment("Api__Models__0", settings.Model)
        .WithReference(registry).WaitFor(registry)
        .WithReference(planner).WaitFor(planner)).ToList();

    // Gateway
    var gateway = builder.AddProject<Projects.Exo_Gateway>("gateway").AsExoService(settings.Port, settings.Public ? "0.0.0.0" : "localhost")
        .WithExternalHttpEndpoints()
        .WithApiReplicas(apis);

    builder.Services.AddHostedService(sp => ActivatorUtilities.CreateInstance<ClusterReadiness>(sp, settings, gateway, workers));
    builder.Services.AddHostedService<CrashRestarts>();
    if (settings.DashboardPort is null) builder.Services.AddHostedService<ServiceLogs>();

    await builder.Build().RunAsync(cancellationToken);
    return 0;
}, CancellationToken.None);
