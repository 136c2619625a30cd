using Exo.Grpc;

namespace Exo.Contracts.V1;

/// <summary>Descriptors, service base and client for <c>exo.v1.Shard</c> (shard.proto).</summary>
public static class Shard
{
    public const string ServiceName = "exo.v1.Shard";

    public static readonly Method<ForwardMessage, ForwardMessage> ForwardMethod =
        ProtobufMethods.Create<ForwardMessage, ForwardMessage>(MethodType.DuplexStreaming, ServiceName, "Forward");

    public static readonly Method<CancelRequest, CancelResponse> CancelMethod =
        ProtobufMethods.Create<CancelRequest, CancelResponse>(MethodType.Unary, ServiceName, "Cancel");

    public static readonly Method<ShardStatusRequest, ShardStatus> StatusMethod =
        ProtobufMethods.Create<ShardStatusRequest, ShardStatus>(MethodType.Unary, ServiceName, "Status");

    public static void BindService(ServiceBinderBase binder, ShardBase service)
    {
        binder.AddMethod(ForwardMethod, (DuplexStreamingServerMethod<ForwardMessage, ForwardMessage>)service.Forward);
        binder.AddMethod(CancelMethod, service.Cancel);
        binder.AddMethod(StatusMethod, service.Status);
    }

    [BindServiceMethod(typeof(Shard), nameof(BindService))]
    public abstract class ShardBase
    {
        public virtual Task Forward(IAsyncStreamReader<ForwardMessage> requestStream, IServerStreamWriter<ForwardMessage> responseStream, ServerCallContext context) =>
            throw ForwardMethod.Unimplemented();

        public virtual Task<CancelResponse> Cancel(CancelRequest request, ServerCallContext context) => throw CancelMethod.Unimplemented();

        public virtual Task<ShardStatus> Status(ShardStatusRequest request, ServerCallContext context) => throw StatusMethod.Unimplemented();
    }

    public sealed class ShardClient(CallInvoker callInvoker) : ClientBase(callInvoker)
    {
        public ShardClient(GrpcChannel channel)
            : this(channel.CreateCallInvoker())
        {
        }

        public AsyncDuplexStreamingCall<ForwardMessage, ForwardMessage> Forward(CallOptions options = default) =>
            CallInvoker.AsyncDuplexStreamingCall(ForwardMethod, null, options);

        public AsyncUnaryCall<CancelResponse> CancelAsync(CancelRequest request, CallOptions options = default) =>
            CallInvoker.AsyncUnaryCall(CancelMethod, null, options, request);

        public AsyncUnaryCall<ShardStatus> StatusAsync(ShardStatusRequest request, CallOptions options = default) =>
            CallInvoker.AsyncUnaryCall(StatusMethod, null, options, request);
    }
}
