namespace Exo.AppHost;

/// <summary>What the AppHost does beside starting the resources: says when the cluster is ready, restarts what crashes, and shows logs when headless.</summary>
public static class Supervision
{
    public static IDistributedApplicationBuilder AddSupervision(
        this IDistributedApplicationBuilder builder, AppHostSettings settings, IResourceBuilder<ProjectResource> gateway, IReadOnlyList<IResourceBuilder<ProjectResource>> workers)
    {
        builder.Services.AddHostedService(sp => ActivatorUtilities.CreateInstance<ClusterReadiness>(sp, settings, gateway, workers));
        builder.Services.AddHostedService<CrashRestarts>();
        if (settings.DashboardPort is null) builder.Services.AddHostedService<ServiceLogs>();
        builder.Services.AddLogging(logging => logging
            // A failed health check while a service starts is expected, and the dashboard shows each one's health.
            .AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks", LogLevel.None)
            // The dashboard's own requests and DCP's chatter are not the cluster's news.
            .AddFilter("Microsoft.AspNetCore", LogLevel.Warning)
            .AddFilter("Aspire.Hosting.Dcp", LogLevel.Warning));
        return builder;
    }
}
