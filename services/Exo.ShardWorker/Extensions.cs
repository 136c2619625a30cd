using System.Net;
using Exo.Contracts;
using Exo.Grpc;
using Exo.ServiceDefaults;
using Exo.ShardWorker.Node;
using Exo.ShardWorker.Stages;
using Microsoft.Extensions.Options;

namespace Exo.ShardWorker;

public static class Extensions
{
    /// <summary>
    /// Settings (section "ShardWorker", short switches in <see cref="ShardWorkerOptions.Switches"/>), the node id from the
    /// data directory, the registry and planner clients, this node's stages and the gRPC endpoint they are served on.
    /// </summary>
    public static IHostApplicationBuilder AddApplicationServices(this WebApplicationBuilder builder, string[] args)
    {
        builder.Configuration.AddCommandLine(args, ShardWorkerOptions.Switches.ToDictionary());
        var options = builder.Configuration.GetSection("ShardWorker").Get<ShardWorkerOptions>() ?? new ShardWorkerOptions();
        options.Validate();
        builder.Services.AddSingleton(Options.Create(options));
        builder.Services.AddSingleton(new NodeId(NodeIdentity.LoadOrCreate(options.DataDir)));
        builder.Services.AddSingleton(TimeProvider.System);

        builder.WebHost.UseGrpcEndpoint(new IPEndPoint(IPAddress.Parse(options.GrpcAddress), options.GrpcPort));
        builder.Services.AddGrpc(o => o.MaxReceiveMessageSize = 256 << 20);

        var configuration = builder.Configuration;
        builder.Services.AddSingleton(new Contracts.V1.Registry.RegistryClient(GrpcChannel.ForAddress(configuration.ResolveServiceUri("registry", "grpc"))));
        builder.Services.AddSingleton(new Contracts.V1.Planner.PlannerClient(GrpcChannel.ForAddress(configuration.ResolveServiceUri("planner", "grpc"))));
        builder.Services.AddSingleton<StageHosts>();
        builder.Services.AddHostedService<NodeAgent>();
        builder.Services.AddHostedService<PlacementFollower>();
        builder.Services.AddHostedService<IdleRequestSweeper>();
        return builder;
    }
}
