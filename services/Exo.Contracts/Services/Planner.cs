using Exo.Grpc;

namespace Exo.Contracts.V1;

/// <summary>Descriptors, service base and client for <c>exo.v1.Planner</c> (planner.proto).</summary>
public static class Planner
{
    public const string ServiceName = "exo.v1.Planner";

    public static readonly Method<GetPlacementRequest, Placement> GetPlacementMethod =
        ProtobufMethods.Create<GetPlacementRequest, Placement>(MethodType.Unary, ServiceName, "GetPlacement");

    public static readonly Method<WatchPlacementsRequest, Placement> WatchPlacementsMethod =
        ProtobufMethods.Create<WatchPlacementsRequest, Placement>(MethodType.ServerStreaming, ServiceName, "WatchPlacements");

    public static void BindService(ServiceBinderBase binder, PlannerBase service)
    {
        binder.AddMethod(GetPlacementMethod, service.GetPlacement);
        binder.AddMethod(WatchPlacementsMethod, (ServerStreamingServerMethod<WatchPlacementsRequest, Placement>)service.WatchPlacements);
    }

    [BindServiceMethod(typeof(Planner), nameof(BindService))]
    public abstract class PlannerBase
    {
        public virtual Task<Placement> GetPlacement(GetPlacementRequest request, ServerCallContext context) => throw GetPlacementMethod.Unimplemented();

        public virtual Task WatchPlacements(WatchPlacementsRequest request, IServerStreamWriter<Placement> responseStream, ServerCallContext context) =>
            throw WatchPlacementsMethod.Unimplemented();
    }

    public sealed class PlannerClient(CallInvoker callInvoker) : ClientBase(callInvoker)
    {
        public PlannerClient(GrpcChannel channel)
            : this(channel.CreateCallInvoker())
        {
        }

        public AsyncUnaryCall<Placement> GetPlacementAsync(GetPlacementRequest request, CallOptions options = default) =>
            CallInvoker.AsyncUnaryCall(GetPlacementMethod, null, options, request);

        public AsyncServerStreamingCall<Placement> WatchPlacements(WatchPlacementsRequest request, CallOptions options = default) =>
            CallInvoker.AsyncServerStreamingCall(WatchPlacementsMethod, null, options, request);
    }
}
