using Exo.Registry.Store;
using Exo.ServiceDefaults;

namespace Exo.Registry;

public static partial class Extensions
{
    /// <summary>The node store (Redis when <c>ConnectionStrings:redis</c> is set, else in memory) and the gRPC endpoint.</summary>
    public static IHostApplicationBuilder AddApplicationServices(this WebApplicationBuilder builder)
    {
        builder.AddDefaultEndpoints(httpPort: 52426, grpcPort: 52416);
        builder.Services.AddGrpc();
        builder.Services.AddGrpcHealthChecks();
        builder.Services.AddSingleton<INodeStore>(sp =>
        {
            var redis = builder.Configuration.GetConnectionString("redis");
            if (!string.IsNullOrWhiteSpace(redis))
            {
                // Connecting is part of starting: a registry that cannot reach its Redis should fail at once, saying so.
                return RedisNodeStore.ConnectAsync(redis, sp.GetRequiredService<ILogger<RedisNodeStore>>()).GetAwaiter().GetResult();
            }

            var logger = sp.GetRequiredService<ILogger<InMemoryNodeStore>>();
            LogInMemory(logger);
            return new InMemoryNodeStore(logger);
        });
        return builder;
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "No Redis is configured (ConnectionStrings__redis): cluster membership is kept in this process's memory and is lost when it stops")]
    private static partial void LogInMemory(ILogger logger);
}
