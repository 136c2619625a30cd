using Exo.Contracts;
using Exo.Hub;
using Exo.Inference.Backends;
using Exo.Ring;
using Exo.ServiceDefaults;
using Exo.ShardWorker.Models;
using Exo.ShardWorker.Node;
using Exo.ShardWorker.Stages;
using Microsoft.Extensions.Options;

namespace Exo.ShardWorker;

public static class Extensions
{
    /// <summary>
    /// Settings (section "ShardWorker", short switches in <see cref="ShardWorkerOptions.Switches"/>), the cluster's addresses
    /// (found on the local network when none is given), the node id from the data directory, the registry and planner
    /// clients, this node's stages and the gRPC endpoint they are served on.
    /// </summary>
    public static IHostApplicationBuilder AddApplicationServices(this WebApplicationBuilder builder, string[] args)
    {
        builder.Configuration.AddCommandLine(args, ShardWorkerOptions.Switches.ToDictionary());
        var options = builder.Configuration.GetSection("ShardWorker").Get<ShardWorkerOptions>() ?? new ShardWorkerOptions();
        options.Validate();
        // Set by the AppHost's references, by --registry and --planner, or else found on the local network.
        builder.FindClusterWhenUnset();
        builder.Configuration.RequireServiceAddress("registry");
        builder.Configuration.RequireServiceAddress("planner");
        // --port/--address are the defaults of Kestrel's grpc endpoint; an explicit Kestrel:Endpoints:grpc:Url (the AppHost's) wins.
        builder.AddDefaultEndpoints(httpPort: 52428, grpcPort: options.GrpcPort, grpcAddress: options.GrpcAddress);
        var grpc = builder.Configuration.Url(KestrelEndpoints.Grpc);
        (options.GrpcAddress, options.GrpcPort) = (grpc.Host, grpc.Port);
        builder.Services.AddSingleton(Options.Create(options));
        builder.Services.AddSingleton(new NodeId(NodeIdentity.LoadOrCreate(options.DataDir)));
        // The GPU is opened (and its bandwidth measured) before anything registers: a --backend vulkan without a usable
        // device stops the worker here, with the reason.
        builder.Services.AddSingleton(new WorkerCompute(options.BackendChoice, StageLoader.Device(options.BackendChoice)));
        builder.Services.AddSingleton(TimeProvider.System);

        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = 256 << 20;
            o.Interceptors.Add<ClusterSecretCheck>();
        });
        builder.Services.AddGrpcHealthChecks();
        builder.Services.AddServiceGrpcClient<Contracts.V1.Registry.RegistryClient>("registry");
        builder.Services.AddServiceGrpcClient<Contracts.V1.Planner.PlannerClient>("planner");
        builder.Services.AddSingleton<PeerReports>();
        builder.Services.AddSingleton<ModelPeers>();
        builder.Services.AddSingleton<StageMetrics>();
        builder.Services.AddSingleton<StageHosts>();
        builder.Services.AddHostedService<NodeAgent>();
        builder.Services.AddHostedService<PlacementFollower>();
        builder.Services.AddHostedService<IdleRequestSweeper>();
        return builder;
    }

    /// <summary>
    /// <see cref="AddApplicationServices"/>, or the exit code when the worker cannot start: 2 for settings a person typed
    /// (one line saying what to fix, not a stack trace), 0 when stopped while looking for a cluster.
    /// </summary>
    public static int? TryAddApplicationServices(this WebApplicationBuilder builder, string[] args)
    {
        try
        {
            builder.AddApplicationServices(args);
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or InvalidDataException or IOException or UnauthorizedAccessException
                                       or Inference.Vulkan.GpuUnavailableException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
    }

    /// <summary>
    /// Lends the models directory's model folders to other workers (<see cref="ModelFileEndpoints.MapModelFiles"/>), to
    /// callers with the cluster's secret: the fetching side is <see cref="ModelPeers"/>.
    /// </summary>
    public static IEndpointRouteBuilder MapModelFilesApi(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<ShardWorkerOptions>>().Value;
        return app.MapModelFiles(new ModelFileOptions(options.ModelsDirectory) { Secret = app.Services.GetRequiredService<ClusterSecret>() });
    }
}
