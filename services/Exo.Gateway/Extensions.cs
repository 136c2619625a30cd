using Exo.Gateway.Edge;
using Exo.Gateway.Proxy;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Configuration.Memory;

namespace Exo.Gateway;

public static class Extensions
{
    public static IHostApplicationBuilder AddApplicationServices(this IHostApplicationBuilder builder)
    {
        // A gateway started by hand proxies to an API started by hand; the AppHost's services__api__http__N override this.
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?> { ["services:api:http:0"] = ApiProxy.DefaultReplica },
        });

        var options = builder.Configuration.GetSection(GatewayOptions.Section).Get<GatewayOptions>() ?? new GatewayOptions();
        options.Validate();
        builder.Services.AddOptions<GatewayOptions>().Bind(builder.Configuration.GetSection(GatewayOptions.Section));
        // YARP's session-affinity policies ask for data protection at start; with no affinity in use, keys stay in memory.
        builder.Services.AddDataProtection().UseEphemeralDataProtectionProvider();
        // A line per proxied request, and a stack trace per failed probe, would bury the log; replica health changes stay.
        Quieter(builder, "Yarp", LogLevel.Warning);
        Quieter(builder, "Yarp.ReverseProxy.Health.ActiveHealthCheckMonitor", LogLevel.Error);
        builder.Services.AddSingleton<ApiKeys>().AddSingleton<ApiKeyCheck>();
        builder.Services.AddEdgeRateLimits();
        builder.Services.AddApiProxy(options);
        return builder;
    }

    private static void Quieter(IHostApplicationBuilder builder, string category, LogLevel level)
    {
        if (builder.Configuration[$"Logging:LogLevel:{category}"] is null) builder.Logging.AddFilter(category, level);
    }
}
