using Exo.Api.Backends;
using Exo.Contracts;
using Exo.Api.Completions;
using Exo.Api.Models;
using Exo.Api.OpenAi;
using Exo.ServiceDefaults;
using Microsoft.Extensions.Options;

namespace Exo.Api;

public static class Extensions
{
    public static IHostApplicationBuilder AddApplicationServices(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<ApiOptions>().Bind(builder.Configuration.GetSection("Api")).Validate(o =>
        {
            o.Validate();
            return true;
        });
        services.AddSingleton(sp => new ModelCatalog(sp.GetRequiredService<IOptions<ApiOptions>>().Value.Models));
        services.AddSingleton(sp => new AdmissionControl(sp.GetRequiredService<IGenerationBackend>(),
            sp.GetRequiredService<IOptions<ApiOptions>>().Value.MaxWaitingRequests, TimeProvider.System, sp.GetRequiredService<ILogger<AdmissionControl>>()));
        services.AddSingleton<ApiTelemetry>();
        services.AddSingleton<RequestBodyReader>();
        services.AddSingleton<PromptGate>();
        if (builder.Configuration["services:planner:grpc:0"] is null)
        {
            // No cluster configured: the gateway runs the models itself, for one machine and for API tests.
            services.AddSingleton<IGenerationBackend>(sp =>
            {
                var o = sp.GetRequiredService<IOptions<ApiOptions>>().Value;
                return new LocalBackend(sp.GetRequiredService<ModelCatalog>(), o.KvCacheMegabytes * 1024 * 1024);
            });
            return builder;
        }

        services.AddServiceGrpcClient<Contracts.V1.Planner.PlannerClient>("planner");
        services.AddServiceGrpcClient<Contracts.V1.Registry.RegistryClient>("registry");
        services.AddSingleton<IGenerationBackend>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<ApiOptions>>().Value;
            return new ClusterBackend(sp.GetRequiredService<Contracts.V1.Planner.PlannerClient>(), sp.GetRequiredService<Contracts.V1.Registry.RegistryClient>(),
                sp.GetRequiredService<ClusterSecret>(), TimeSpan.FromSeconds(o.TokenTimeoutSeconds), TimeSpan.FromSeconds(o.ResumeTimeoutSeconds),
                sp.GetRequiredService<ILogger<ClusterBackend>>());
        });
        return builder;
    }
}
