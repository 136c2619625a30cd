using Exo.AppHost;

return await AppHostCommand.InvokeAsync(args, async (settings, cancellationToken) =>
{
    var builder = DistributedApplication.CreateBuilder(AppHostOptions.For(settings));
    // gRPC endpoints other machines reach with --public; the rest stays on loopback.
    var grpcHost = settings.Public ? "0.0.0.0" : "127.0.0.1";

    // Infrastructure
    var redis = builder.AddClusterRedis("redis", Path.Combine(settings.DataDir, "redis"));
    var secret = builder.AddParameter("cluster-secret", ClusterSecretFile.LoadOrCreate(settings.DataDir), secret: true);

    // Services
    var registry = builder.AddProject<Projects.Exo_Registry>("registry").AsExoService()
        .WithGrpcEndpoint(settings.Public ? AppHostCommand.PublicRegistryPort : null, grpcHost)
        .WithClusterSecret(secret)
        .WithAdvertising(settings.Public)
        .WithRedis(redis);

    var planner = builder.AddProject<Projects.Exo_Planner>("planner").AsExoService()
        .WithGrpcEndpoint(settings.Public ? AppHostCommand.PublicPlannerPort : null, grpcHost)
        .WithEnvironment("Planner__Models__0", settings.Model)
        .WithEnvironment("Planner__Replicas", settings.Replicas)
        .WithClusterSecret(secret)
        .WithRedis(redis)
        .WithReference(registry).WaitFor(registry);

    var workers = Enumerable.Range(1, settings.Workers).Select(i => builder.AddProject<Projects.Exo_ShardWorker>($"worker-{i}").AsExoService()
        .WithGrpcEndpoint(host: grpcHost)
        // Each worker keeps its node id here between runs, so its identity in the cluster is stable.
        .WithEnvironment("ShardWorker__DataDir", Path.Combine(settings.DataDir, $"worker-{i}"))
        .WithEnvironment("ShardWorker__ModelsDir", Path.GetDirectoryName(settings.Model)!)
        .WithClusterSecret(secret)
        .WithReference(registry).WaitFor(registry)
        .WithReference(planner).WaitFor(planner)).ToList();

    var apis = Enumerable.Range(1, settings.ApiReplicas).Select(i => builder.AddProject<Projects.Exo_Api>(settings.ApiReplicas == 1 ? "api" : $"api-{i}").AsExoService()
        .WithEnvironment("Api__Models__0", settings.Model)
        .WithClusterSecret(secret)
        .WithReference(registry).WaitFor(registry)
        .WithReference(planner).WaitFor(planner)).ToList();

    // Gateway: the only HTTP endpoint beyond loopback, so the API keys are checked there.
    var gateway = builder.AddProject<Projects.Exo_Gateway>("gateway").AsExoService(settings.Port, settings.Public ? "0.0.0.0" : "localhost")
        .WithExternalHttpEndpoints()
        .WithApiKeys(settings.ApiKeys)
        .WithApiReplicas(apis);

    builder.AddSupervision(settings, gateway, workers);
    await builder.Build().RunAsync(cancellationToken);
    return 0;
}, CancellationToken.None);
