using Exo.Grpc;

namespace Grpc.Health.V1;

/// <summary>Descriptors, service base and client for the standard <c>grpc.health.v1.Health</c> service.</summary>
public static class Health
{
    public const string ServiceName = "grpc.health.v1.Health";

    public static readonly Method<HealthCheckRequest, HealthCheckResponse> CheckMethod =
        ProtobufMethods.Create<HealthCheckRequest, HealthCheckResponse>(MethodType.Unary, ServiceName, "Check");

    public static readonly Method<HealthCheckRequest, HealthCheckResponse> WatchMethod =
        ProtobufMethods.Create<HealthCheckRequest, HealthCheckResponse>(MethodType.ServerStreaming, ServiceName, "Watch");

    public static void BindService(ServiceBinderBase binder, HealthBase service)
    {
        binder.AddMethod(CheckMethod, service.Check);
        binder.AddMethod(WatchMethod, (ServerStreamingServerMethod<HealthCheckRequest, HealthCheckResponse>)service.Watch);
    }

    [BindServiceMethod(typeof(Health), nameof(BindService))]
    public abstract class HealthBase
    {
        public virtual Task<HealthCheckResponse> Check(HealthCheckRequest request, ServerCallContext context) => throw CheckMethod.Unimplemented();

        public virtual Task Watch(HealthCheckRequest request, IServerStreamWriter<HealthCheckResponse> responseStream, ServerCallContext context) =>
            throw WatchMethod.Unimplemented();
    }

    public sealed class HealthClient(CallInvoker callInvoker) : ClientBase(callInvoker)
    {
        public HealthClient(GrpcChannel channel)
            : this(channel.CreateCallInvoker())
        {
        }

        public AsyncUnaryCall<HealthCheckResponse> CheckAsync(HealthCheckRequest request, CallOptions options = default) =>
            CallInvoker.AsyncUnaryCall(CheckMethod, null, options, request);

        public AsyncServerStreamingCall<HealthCheckResponse> Watch(HealthCheckRequest request, CallOptions options = default) =>
            CallInvoker.AsyncServerStreamingCall(WatchMethod, null, options, request);
    }
}
