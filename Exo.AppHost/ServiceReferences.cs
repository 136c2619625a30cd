namespace Exo.AppHost;

/// <summary>The references between the cluster's services that Aspire's <c>WithReference</c> does not express alone.</summary>
public static class ServiceReferences
{
    /// <summary>The cluster's Redis as <c>ConnectionStrings__redis</c>, started and answering first; none when there is no Redis.</summary>
    public static IResourceBuilder<ProjectResource> WithRedis(this IResourceBuilder<ProjectResource> service, IResourceBuilder<IResourceWithConnectionString>? redis) =>
        redis is null ? service : service.WithReference(redis).WaitFor(redis);

    /// <summary>The cluster's join secret as <c>Cluster__Secret</c>, which every node's gRPC calls carry and its gRPC services require.</summary>
    public static IResourceBuilder<ProjectResource> WithClusterSecret(this IResourceBuilder<ProjectResource> service, IResourceBuilder<ParameterResource> secret) =>
        service.WithEnvironment("Cluster__Secret", secret);

    /// <summary>
    /// With --public, the registry advertises the cluster on the local network over mDNS (<c>_exo._tcp.local</c>), so that
    /// a worker started elsewhere with no --registry finds it; the planner is named on its public port, the registry
    /// replacing localhost with this machine's address.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithAdvertising(this IResourceBuilder<ProjectResource> registry, bool isPublic)
    {
        if (!isPublic) return registry;
        // A plain string: an interpolated one would bind to Aspire's reference-expression overload.
        var planner = "http://localhost:" + AppHostCommand.PublicPlannerPort;
        return registry.WithEnvironment("Registry__Advertise", "true").WithEnvironment("Registry__AdvertisedPlanner", planner);
    }

    /// <summary>The API keys the gateway requires, <c>Gateway__ApiKeys__N</c>, each a secret parameter (masked in the dashboard).</summary>
    public static IResourceBuilder<ProjectResource> WithApiKeys(this IResourceBuilder<ProjectResource> gateway, IReadOnlyList<string> keys)
    {
        for (var i = 0; i < keys.Count; i++)
        {
            gateway.WithEnvironment($"Gateway__ApiKeys__{i}", gateway.ApplicationBuilder.AddParameter($"api-key-{i + 1}", keys[i], secret: true));
        }

        return gateway;
    }

    /// <summary>
    /// Every API replica as one service-discovery name, <c>services__api__http__N</c>, which the gateway's YARP cluster
    /// expands into its destinations: balanced, health-checked and retried one by one, as no single proxied address could be.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithApiReplicas(this IResourceBuilder<ProjectResource> gateway, IReadOnlyList<IResourceBuilder<ProjectResource>> apis)
    {
        for (var i = 0; i < apis.Count; i++)
        {
            gateway.WithEnvironment($"services__api__http__{i}", apis[i].GetEndpoint(ServiceEndpoints.Http)).WaitFor(apis[i]);
        }

        return gateway;
    }
}
