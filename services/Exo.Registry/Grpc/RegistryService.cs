using Exo.Contracts.V1;
using Grpc.Core;
using Exo.Registry.Liveness;
using Exo.Registry.Store;

namespace Exo.Registry.Grpc;

/// <summary><c>exo.v1.Registry</c>: membership with leases, over the node store.</summary>
public sealed partial class RegistryService(INodeStore store, UnreachableNodes unreachable, IHostApplicationLifetime lifetime, ILogger<RegistryService> logger) : Contracts.V1.Registry.RegistryBase
{
    public override async Task<RegisterResponse> Register(RegisterRequest request, ServerCallContext context)
    {
        var record = ToRecord(request.Node ?? throw Invalid("node is required"), request.InstanceToken);
        try
        {
            record.Validate();
        }
        catch (ArgumentException e)
        {
            throw Invalid(e.Message);
        }

        try
        {
            await store.RegisterAsync(record, NodeStoreDefaults.LeaseTtl, context.CancellationToken);
        }
        catch (NodeConflictException e)
        {
            LogConflict(record.NodeId, record.Host);
            throw new RpcException(new Status(StatusCode.AlreadyExists, e.Message));
        }

        LogRegistered(record.NodeId, record.GrpcEndpoint, record.AvailableMemoryBytes / 1e9);
        return new RegisterResponse { LeaseId = record.InstanceToken, LeaseTtlMs = (uint)NodeStoreDefaults.LeaseTtl.TotalMilliseconds };
    }

    public override async Task<HeartbeatResponse> Heartbeat(HeartbeatRequest request, ServerCallContext context)
    {
        if (!await store.HeartbeatAsync(request.NodeId, request.LeaseId, context.CancellationToken))
            throw new RpcException(new Status(StatusCode.NotFound, $"node '{request.NodeId}' holds no lease (it expired): register again"));
        return new HeartbeatResponse { LeaseTtlMs = (uint)NodeStoreDefaults.LeaseTtl.TotalMilliseconds };
    }

    public override async Task<DeregisterResponse> Deregister(DeregisterRequest request, ServerCallContext context)
    {
        if (await store.DeregisterAsync(request.NodeId, request.LeaseId, context.CancellationToken)) LogDeregistered(request.NodeId);
        return new DeregisterResponse();
    }

    public override async Task<ReportUnreachableResponse> ReportUnreachable(ReportUnreachableRequest request, ServerCallContext context)
    {
        if (request.NodeId.Length == 0 || request.GrpcEndpoint.Length == 0) throw Invalid("node_id and grpc_endpoint are required");
        var reason = request.Reason.Length > 200 ? request.Reason[..200] : request.Reason;
        return new ReportUnreachableResponse { Removed = await unreachable.CheckAsync(request.NodeId, request.GrpcEndpoint, reason, context.CancellationToken) };
    }

    public override async Task<ListNodesResponse> List(ListNodesRequest request, ServerCallContext context)
    {
        var response = new ListNodesResponse();
        response.Nodes.AddRange((await store.ListAsync(context.CancellationToken)).Select(ToMessage));
        return response;
    }

    public override async Task Watch(WatchNodesRequest request, IServerStreamWriter<NodeEvent> responseStream, ServerCallContext context)
    {
        // A watch lasts until the caller leaves or the registry stops: Kestrel's graceful stop waits for open calls.
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        // Headers at once: a watcher knows it is connected before any node has registered.
        await context.WriteResponseHeadersAsync([]);
        try
        {
            await foreach (var change in store.WatchAsync(watching.Token))
            {
                var kind = change.Kind switch
                {
                    NodeChangeKind.Added => NodeEvent.Types.Kind.Added,
                    NodeChangeKind.Updated => NodeEvent.Types.Kind.Updated,
                    _ => NodeEvent.Types.Kind.Removed,
                };
                await responseStream.WriteAsync(new NodeEvent { Kind = kind, Node = ToMessage(change.Node) }, watching.Token);
            }
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "the registry is stopping; watch again"));
        }
    }

    private static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));

    private static NodeRecord ToRecord(NodeInfo node, string instanceToken) => new()
    {
        NodeId = node.NodeId,
        InstanceToken = instanceToken,
        GrpcEndpoint = node.GrpcEndpoint,
        Host = node.Host,
        Os = node.Os,
        Arch = node.Arch,
        Backend = node.Backend,
        DeviceName = node.DeviceName,
        TotalMemoryBytes = checked((long)node.TotalMemoryBytes),
        AvailableMemoryBytes = checked((long)node.AvailableMemoryBytes),
        MemoryBandwidthBytesPerSecond = node.BandwidthBytesPerSecond,
        Flops = node.Flops,
        ModelsOnDisk = node.ModelsOnDisk.ToArray(),
        FetchesModels = node.FetchesModels,
        WeightTypes = node.WeightTypes.ToArray(),
        Version = node.Version,
    };

    public static NodeInfo ToMessage(NodeRecord record)
    {
        var message = new NodeInfo
        {
            NodeId = record.NodeId,
            GrpcEndpoint = record.GrpcEndpoint,
            Host = record.Host,
            Os = record.Os,
            Arch = record.Arch,
            Backend = record.Backend,
            DeviceName = record.DeviceName,
            TotalMemoryBytes = (ulong)record.TotalMemoryBytes,
            AvailableMemoryBytes = (ulong)record.AvailableMemoryBytes,
            BandwidthBytesPerSecond = record.MemoryBandwidthBytesPerSecond,
            Flops = record.Flops,
            FetchesModels = record.FetchesModels,
            Version = record.Version,
        };
        message.ModelsOnDisk.AddRange(record.ModelsOnDisk);
        message.WeightTypes.AddRange(record.WeightTypes);
        return message;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} registered at {Endpoint} with {AvailableGb:0.0} GB free")]
    private partial void LogRegistered(string nodeId, string endpoint, double availableGb);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} deregistered")]
    private partial void LogDeregistered(string nodeId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {NodeId} from {Host} was refused: another instance holds its id")]
    private partial void LogConflict(string nodeId, string host);
}
