using Exo.Gateway.Backends;
using Exo.Gateway.Completions;
using Exo.Gateway.Models;
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
        services.AddSingleton<IGenerationBackend>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<GatewayOptions>>().Value;
            return new LocalBackend(sp.GetRequiredService<ModelCatalog>(), o.KvCacheMegabytes * 1024 * 1024);
        });
        return builder;
    }
}
