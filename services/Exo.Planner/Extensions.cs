using Exo.Planner.Grpc;
using Exo.Planner.Planning;
using Exo.Planner.Store;
using Exo.ServiceDefaults;
using StackExchange.Redis;

namespace Exo.Planner;

public static partial class Extensions
{
    /// <summary>Aspire's connection string name for the cluster's Redis (<c>ConnectionStrings__redis</c>).</summary>
    public const string RedisConnection = "redis";

    /// <summary>
    /// The models to plan (<c>Planner:Models</c>, folders; served by folder name), how many rings of each
    /// (<c>Planner:Replicas</c>, <c>auto</c> or at most N; see <see cref="ReplicaPlanner"/>), the registry to follow
    /// (<c>services__registry__grpc__0</c>, by service discovery), the placement store (Redis when <c>ConnectionStrings:redis</c> is set, else
    /// in memory) and the endpoints (<see cref="KestrelEndpoints"/>).
    /// </summary>
    public static IHostApplicationBuilder AddApplicationServices(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        builder.AddDefaultEndpoints(httpPort: 52427, grpcPort: 52417);
        builder.Services.AddGrpc(o => o.Interceptors.Add<ClusterSecretCheck>());
        // grpc.health answers from every health check, Aspire's Redis check included: NOT_SERVING while Redis is out of reach.
        builder.Services.AddGrpcHealthChecks();
        if (!string.IsNullOrWhiteSpace(configuration.GetConnectionString(RedisConnection)))
        {
            builder.AddRedisClient(RedisConnection);
            // The client logs every connection step as information; its warnings and failures are what an operator needs.
            if (builder.Configuration["Logging:LogLevel:StackExchange.Redis"] is null) builder.Logging.AddFilter("StackExchange.Redis", LogLevel.Warning);
            builder.Services.AddSingleton(sp => new RedisPlacementStore(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<ILogger<RedisPlacementStore>>()));
            builder.Services.AddSingleton<IPlacementStore>(sp => sp.GetRequiredService<RedisPlacementStore>());
            // Registered before the planner, so it checks Redis first: a Redis out of reach stops the planner at once, saying where it looked.
            builder.Services.AddHostedService(sp => sp.GetRequiredService<RedisPlacementStore>());
        }
        else
        {
            builder.Services.AddSingleton<IPlacementStore>(sp =>
            {
                LogInMemory(sp.GetRequiredService<ILogger<InMemoryPlacementStore>>());
                return new InMemoryPlacementStore();
            });
        }

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<PlacementBoard>();

        var folders = configuration.GetSection("Planner:Models").Get<string[]>() ?? [];
        if (folders.Length == 0) throw new InvalidOperationException("no model to plan: set Planner:Models:0 (Planner__Models__0) to a model folder");
        var contextTokens = configuration.GetValue<int?>("Planner:ContextTokens");
        var models = folders.Select(f => (Path.GetFileName(Path.GetFullPath(f).TrimEnd(Path.DirectorySeparatorChar)), ModelProfile.FromModelDirectory(f, contextTokens))).ToList();

        builder.Services.AddSingleton(Replicas.Parse(configuration[Replicas.Setting]));
        builder.Services.AddServiceGrpcClient<Contracts.V1.Registry.RegistryClient>("registry");
        builder.Services.AddHostedService(sp => ActivatorUtilities.CreateInstance<MembershipPlanner>(sp, (IReadOnlyList<(string, ModelProfile)>)models));
        return builder;
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "No Redis is configured (ConnectionStrings__redis): placements are kept in this process's memory and lost when it restarts")]
    private static partial void LogInMemory(ILogger logger);
}
