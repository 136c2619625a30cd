namespace Exo.AppHost;

/// <summary>How the Exo services listen, in Aspire's resource model: Kestrel endpoints that the services read by name.</summary>
public static class ServiceEndpoints
{
    public const string Http = "http";
    public const string Grpc = "grpc";

    /// <summary>
    /// An Exo service: HTTP/1.1 on loopback (health, HTTP APIs) under Kestrel's endpoint <c>http</c>, logging one line
    /// per entry. Endpoints are not proxied: the ring's hops and every streamed token go straight to the process.
    /// </summary>
    public static IResourceBuilder<ProjectResource> AsExoService(this IResourceBuilder<ProjectResource> service, int? port = null, string host = "127.0.0.1") =>
        service.WithKestrelEndpoint(Http, http2Only: false, port, host)
            .WithHttpHealthCheck("/health", endpointName: Http)
            // Kestrel's named endpoints replace ASPNETCORE_URLS, which would otherwise log that they override it.
            .WithEnvironment(context => context.EnvironmentVariables.Remove("ASPNETCORE_URLS"))
            .WithEnvironment("Logging__Console__FormatterName", "simple")
            .WithEnvironment("Logging__Console__FormatterOptions__SingleLine", "true");

    /// <summary>
    /// The service's h2c gRPC endpoint, <c>grpc</c> (HTTP/2 only, since h2c cannot be negotiated), which references name
    /// as <c>services__NAME__grpc__0</c> and clients reach as <c>http://_grpc.NAME</c>.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithGrpcEndpoint(this IResourceBuilder<ProjectResource> service, int? port = null, string host = "127.0.0.1") =>
        service.WithKestrelEndpoint(Grpc, http2Only: true, port, host);

    private static IResourceBuilder<ProjectResource> WithKestrelEndpoint(this IResourceBuilder<ProjectResource> service, string name, bool http2Only, int? port, string host)
    {
        service.WithEndpoint(name, e =>
        {
            e.UriScheme = "http";
            e.Transport = http2Only ? "http2" : "http";
            e.IsProxied = false;
            e.Port = port;
            e.TargetPort = port;
            e.TargetHost = host;
        });
        var endpoint = service.GetEndpoint(name);
        service.WithEnvironment($"Kestrel__Endpoints__{name}__Url", ReferenceExpression.Create($"http://{host}:{endpoint.Property(EndpointProperty.TargetPort)}"));
        return http2Only ? service.WithEnvironment($"Kestrel__Endpoints__{name}__Protocols", "Http2") : service;
    }
}
