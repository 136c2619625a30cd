namespace Exo.AppHost;

/// <summary>The references between the cluster's services that Aspire's <c>WithReference</c> does not express alone.</summary>
public static class ServiceReferences
{
    /// <summary>The cluster's Redis as <c>ConnectionStrings__redis</c>, started and answering first; none when there is no Redis.</summary>
    public static IResourceBuilder<ProjectResource> WithRedis(this IResourceBuilder<ProjectResource> service, IResourceBuilder<IResourceWithConnectionString>? redis) =>
        redis is null ? service : service.WithReference(redis).WaitFor(redis);

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
