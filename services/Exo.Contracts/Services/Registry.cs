using Exo.Grpc;

namespace Exo.Contracts.V1;

/// <summary>Descriptors, service base and client for <c>exo.v1.Registry</c> (registry.proto).</summary>
public static class Registry
{
    public const string ServiceName = "exo.v1.Registry";

    public static readonly Method<RegisterRequest, RegisterResponse> RegisterMethod =
        ProtobufMethods.Create<RegisterRequest, RegisterResponse>(MethodType.Unary, ServiceName, "Register");

    public static readonly Method<HeartbeatRequest, HeartbeatResponse> HeartbeatMethod =
        ProtobufMethods.Create<HeartbeatRequest, HeartbeatResponse>(MethodType.Unary, ServiceName, "Heartbeat");

    public static readonly Method<DeregisterRequest, DeregisterResponse> DeregisterMethod =
        ProtobufMethods.Create<DeregisterRequest, DeregisterResponse>(MethodType.Unary, ServiceName, "Deregister");

    public static readonly Method<ListNodesRequest, ListNodesResponse> ListMethod =
        ProtobufMethods.Create<ListNodesRequest, ListNodesResponse>(MethodType.Unary, ServiceName, "List");

    public static readonly Method<WatchNodesRequest, NodeEvent> WatchMethod =
        ProtobufMethods.Create<WatchNodesRequest, NodeEvent>(MethodType.ServerStreaming, ServiceName, "Watch");

    public static void BindService(ServiceBinderBase binder, RegistryBase service)
    {
        binder.AddMethod(RegisterMethod, service.Register);
        binder.AddMethod(HeartbeatMethod, service.Heartbeat);
        binder.AddMethod(DeregisterMethod, service.Deregister);
        binder.AddMethod(ListMethod, service.List);
        binder.AddMethod(WatchMethod, (ServerStreamingServerMethod<WatchNodesRequest, NodeEvent>)service.Watch);
    }

    [BindServiceMethod(typeof(Registry), nameof(BindService))]
    public abstract class RegistryBase
    {
        public virtual Task<RegisterResponse> Register(RegisterRequest request, ServerCallContext context) => throw RegisterMethod.Unimplemented();

        public virtual Task<HeartbeatResponse> Heartbeat(HeartbeatRequest request, ServerCallContext context) => throw HeartbeatMethod.Unimplemented();

        public virtual Task<DeregisterResponse> Deregister(DeregisterRequest request, ServerCallContext context) => throw DeregisterMethod.Unimplemented();

        public virtual Task<ListNodesResponse> List(ListNodesRequest request, ServerCallContext context) => throw ListMethod.Unimplemented();

        public virtual Task Watch(WatchNodesRequest request, IServerStreamWriter<NodeEvent> responseStream, ServerCallContext context) =>
            throw WatchMethod.Unimplemented();
    }

    public sealed class RegistryClient(CallInvoker callInvoker) : ClientBase(callInvoker)
    {
        public RegistryClient(GrpcChannel channel)
            : this(channel.CreateCallInvoker())
        {
        }

        public AsyncUnaryCall<RegisterResponse> RegisterAsync(RegisterRequest request, CallOptions options = default) =>
            CallInvoker.AsyncUnaryCall(RegisterMethod, null, options, request);

        public AsyncUnaryCall<HeartbeatResponse> HeartbeatAsync(HeartbeatRequest request, CallOptions options = default) =>
            CallInvoker.AsyncUnaryCall(HeartbeatMethod, null, options, request);

        public AsyncUnaryCall<DeregisterResponse> DeregisterAsync(DeregisterRequest request, CallOptions options = default) =>
            CallInvoker.AsyncUnaryCall(DeregisterMethod, null, options, request);

        public AsyncUnaryCall<ListNodesResponse> ListAsync(ListNodesRequest request, CallOptions options = default) =>
            CallInvoker.AsyncUnaryCall(ListMethod, null, options, request);

        public AsyncServerStreamingCall<NodeEvent> Watch(WatchNodesRequest request, CallOptions options = default) =>
            CallInvoker.AsyncServerStreamingCall(WatchMethod, null, options, request);
    }
}
