using Exo.AppHost.Hosting;

namespace Exo.AppHost;

/// <summary>How an Exo service is run: its configuration contract, in the AppHost's resource model.</summary>
public static class ExoServiceExtensions
{
    /// <summary>
    /// An Exo service (an ASP.NET Core application built with the AppHost) serving HTTP on <paramref name="port"/> (a free one
    /// when null), healthy when its <c>/health</c> answers, in Production, logging one line per entry so prefixes stay aligned.
    /// </summary>
    public static ResourceBuilder<ProjectResource> AddService(this DistributedApplicationBuilder app, string name, string project, int? port = null, string host = "127.0.0.1") =>
        app.AddProject(name, ServiceProjects.PathOf(project))
            .WithHttpEndpoint(port, host)
            .WithHttpHealthCheck("/health")
            .WithEnvironment("DOTNET_ENVIRONMENT", "Production")
            .WithEnvironment("ASPNETCORE_ENVIRONMENT", "Production")
            // Not every request (health probes come five times a second while starting); lifetime messages still show.
            .WithEnvironment("Logging__LogLevel__Microsoft.AspNetCore", "Warning")
            .WithEnvironment("Logging__Console__FormatterName", "simple")
            .WithEnvironment("Logging__Console__FormatterOptions__SingleLine", "true");

    /// <summary>
    /// The service's h2c gRPC endpoint, named "grpc", told to it as <c>SECTION__GrpcPort</c>: on loopback, or on every
    /// interface when other machines must reach it (a worker then advertises this host's name instead of 127.0.0.1).
    /// </summary>
    public static ResourceBuilder<ProjectResource> WithGrpcEndpoint(this ResourceBuilder<ProjectResource> service, string section, bool everyInterface = false, int? port = null) =>
        service.WithEndpoint("grpc", $"{section}__GrpcPort", port).WithEnvironment($"{section}__GrpcAddress", everyInterface ? "0.0.0.0" : "127.0.0.1");
}
