using Exo.Gateway.Backends;
using Exo.Gateway.Completions;
using Exo.Gateway.Models;
using Exo.Grpc;
using Exo.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Exo.Gateway;

public static class Extensions
{
    public static IHostApplicationBuilder AddApplicationServices(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<GatewayOptions>().Bind(builder.Configuration.GetSection("Gateway")).Validate(o =>
        {
            o.Validate();
            return true;
        });
        services.AddSingleton(sp => new ModelCatalog(sp.GetRequiredService<IOptions<GatewayOptions>>().Value.Models));
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<GatewayOptions>>().Value;
            return new AdmissionControl(o.MaxConcurrentRequests, o.MaxWaitingRequests);
        });
        services.AddSingleton<GatewayTelemetry>();
        if (builder.Configuration["services:planner:grpc:0"] is null)
        {
            // No cluster configured: the gateway runs the models itself, for one machine and for API tests.
            services.AddSingleton<IGenerationBackend>(sp =>
            {
                var o = sp.GetRequiredService<IOptions<GatewayOptions>>().Value;
                return new LocalBackend(sp.GetRequiredService<ModelCatalog>(), o.KvCacheMegabytes * 1024 * 1024);
            });
            return builder;
        }

        var planner = new Contracts.V1.Planner.PlannerClient(GrpcChannel.ForAddress(builder.Configuration.ResolveServiceUri("planner", "grpc")));
        var registry = new Contracts.V1.Registry.RegistryClient(GrpcChannel.ForAddress(builder.Configuration.ResolveServiceUri("registry", "grpc")));
        services.AddSingleton<IGenerationBackend>(sp => new ClusterBackend(planner, registry,
            TimeSpan.FromSeconds(sp.GetRequiredService<IOptions<GatewayOptions>>().Value.TokenTimeoutSeconds), sp.GetRequiredService<ILogger<ClusterBackend>>()));
        return builder;
    }
}
