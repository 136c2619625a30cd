using Exo.Registry.Discovery;
using Exo.Registry.Liveness;
using Exo.Registry.Store;
using Exo.ServiceDefaults;
using StackExchange.Redis;

namespace Exo.Registry;

public static partial class Extensions
{
    /// <summary>Aspire's connection string name for the cluster's Redis (<c>ConnectionStrings__redis</c>).</summary>
    public const string RedisConnection = "redis";

    /// <summary>
    /// The node store (Redis when <c>ConnectionStrings:redis</c> is set, else in memory), the gRPC endpoint, and the
    /// cluster's mDNS advertisement when <c>Registry:Advertise</c> is on.
    /// </summary>
    public static IHostApplicationBuilder AddApplicationServices(this WebApplicationBuilder builder)
    {
        builder.AddDefaultEndpoints(httpPort: 52426, grpcPort: 52416);
        builder.Services.AddGrpc(o => o.Interceptors.Add<ClusterSecretCheck>());
        // grpc.health answers from every health check, Aspire's Redis check included: NOT_SERVING while Redis is out of reach.
        builder.Services.AddGrpcHealthChecks();
        builder.Services.AddSingleton<UnreachableNodes>();
        builder.AddClusterAdvertising();

        if (!string.IsNullOrWhiteSpace(builder.Configuration.GetConnectionString(RedisConnection)))
        {
            builder.AddRedisClient(RedisConnection);
            // The client logs every connection step as information; its warnings and failures are what an operator needs.
            if (builder.Configuration["Logging:LogLevel:StackExchange.Redis"] is null) builder.Logging.AddFilter("StackExchange.Redis", LogLevel.Warning);
            builder.Services.AddSingleton(sp => new RedisNodeStore(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<ILogger<RedisNodeStore>>()));
            builder.Services.AddSingleton<INodeStore>(sp => sp.GetRequiredService<RedisNodeStore>());
            // Started with the host, before the endpoints listen: a Redis out of reach stops the registry at once, saying where it looked.
            builder.Services.AddHostedService(sp => sp.GetRequiredService<RedisNodeStore>());
            return builder;
        }

        builder.Services.AddSingleton<INodeStore>(sp =>
        {
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
