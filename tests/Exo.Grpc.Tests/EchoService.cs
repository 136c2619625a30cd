using Exo.Grpc.Tests.Echo;
using Google.Protobuf;

namespace Exo.Grpc.Tests;

/// <summary>Descriptors and client for exo.test.v1.Echo, declared the same way as the production contracts.</summary>
public static class EchoContract
{
    public const string ServiceName = "exo.test.v1.Echo";

    public static readonly Method<EchoRequest, EchoReply> UnaryMethod =
        ProtobufMethods.Create<EchoRequest, EchoReply>(MethodType.Unary, ServiceName, "Unary");

    public static readonly Method<EchoRequest, EchoReply> ServerStreamMethod =
        ProtobufMethods.Create<EchoRequest, EchoReply>(MethodType.ServerStreaming, ServiceName, "ServerStream");

    public static readonly Method<EchoRequest, EchoReply> ClientStreamMethod =
        ProtobufMethods.Create<EchoRequest, EchoReply>(MethodType.ClientStreaming, ServiceName, "ClientStream");

    public static readonly Method<EchoRequest, EchoReply> BidiMethod =
        ProtobufMethods.Create<EchoRequest, EchoReply>(MethodType.DuplexStreaming, ServiceName, "Bidi");

    public static void BindService(ServiceBinderBase binder, EchoBase service)
    {
        binder.AddMethod(UnaryMethod, service.Unary);
        binder.AddMethod(ServerStreamMethod, (ServerStreamingServerMethod<EchoRequest, EchoReply>)service.ServerStream);
        binder.AddMethod(ClientStreamMethod, service.ClientStream);
        binder.AddMethod(BidiMethod, (DuplexStreamingServerMethod<EchoRequest, EchoReply>)service.Bidi);
    }

    [BindServiceMethod(typeof(EchoContract), nameof(BindService))]
    public abstract class EchoBase
    {
        public virtual Task<EchoReply> Unary(EchoRequest request, ServerCallContext context) => throw UnaryMethod.Unimplemented();

        public virtual Task ServerStream(EchoRequest request, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context) =>
            throw ServerStreamMethod.Unimplemented();

        public virtual Task<EchoReply> ClientStream(IAsyncStreamReader<EchoRequest> requestStream, ServerCallContext context) =>
            throw ClientStreamMethod.Unimplemented();

        public virtual Task Bidi(IAsyncStreamReader<EchoRequest> requestStream, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context) =>
            throw BidiMethod.Unimplemented();
    }

    public sealed class EchoClient(CallInvoker callInvoker) : ClientBase(callInvoker)
    {
        public EchoClient(GrpcChannel channel)
            : this(channel.CreateCallInvoker())
        {
        }

        public AsyncUnaryCall<EchoReply> UnaryAsync(EchoRequest request, CallOptions options = default) =>
            CallInvoker.AsyncUnaryCall(UnaryMethod, null, options, request);

        public AsyncServerStreamingCall<EchoReply> ServerStream(EchoRequest request, CallOptions options = default) =>
            CallInvoker.AsyncServerStreamingCall(ServerStreamMethod, null, options, request);

        public AsyncClientStreamingCall<EchoRequest, EchoReply> ClientStream(CallOptions options = default) =>
            CallInvoker.AsyncClientStreamingCall(ClientStreamMethod, null, options);

        public AsyncDuplexStreamingCall<EchoRequest, EchoReply> Bidi(CallOptions options = default) =>
            CallInvoker.AsyncDuplexStreamingCall(BidiMethod, null, options);
    }
}

/// <summary>The Exo.Grpc implementation of the echo service; interop/server.js is its grpc-js twin.</summary>
public sealed class EchoServiceImpl : EchoContract.EchoBase
{
    /// <summary>Completed with the method name whenever a handler observes cancellation.</summary>
    public TaskCompletionSource<string> Cancelled { get; private set; } = NewSignal();

    /// <summary>HTTP connection ids that calls arrived on.</summary>
    public System.Collections.Concurrent.ConcurrentDictionary<string, int> Connections { get; } = new();

    /// <summary>Server-stream replies written so far (for the slow-reader test).</summary>
    public int RepliesWritten;

    public void ResetSignals() => Cancelled = NewSignal();

    public override async Task<EchoReply> Unary(EchoRequest request, ServerCallContext context)
    {
        Connections.AddOrUpdate(context.GetHttpContext().Connection.Id, 1, (_, n) => n + 1);
        await EchoMetadataAsync(context);
        await DelayAsync(request, context, "Unary");
        FailIfAsked(request, context);
        return Reply(request, 0);
    }

    public override async Task ServerStream(EchoRequest request, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
    {
        await EchoMetadataAsync(context);
        for (var i = 0; i < request.Count; i++)
        {
            if (i > 0)
            {
                await DelayAsync(request, context, "ServerStream");
            }

            await responseStream.WriteAsync(Reply(request, i), context.CancellationToken);
            Interlocked.Increment(ref RepliesWritten);
        }

        FailIfAsked(request, context);
    }

    public override async Task<EchoReply> ClientStream(IAsyncStreamReader<EchoRequest> requestStream, ServerCallContext context)
    {
        var parts = new List<string>();
        long bytes = 0;
        EchoRequest? last = null;
        try
        {
            await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken))
            {
                parts.Add(request.Message);
                bytes += request.Payload.Length;
                last = request;
                FailIfAsked(request, context);
            }
        }
        catch (OperationCanceledException)
        {
            Cancelled.TrySetResult("ClientStream");
            throw;
        }

        return new EchoReply { Message = string.Join(",", parts), Index = parts.Count, Payload = ByteString.CopyFromUtf8(bytes.ToString(System.Globalization.CultureInfo.InvariantCulture)) };
    }

    public override async Task Bidi(IAsyncStreamReader<EchoRequest> requestStream, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
    {
        var index = 0;
        try
        {
            while (await requestStream.MoveNext(context.CancellationToken))
            {
                var request = requestStream.Current;
                FailIfAsked(request, context);
                await responseStream.WriteAsync(Reply(request, index++), context.CancellationToken);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            Cancelled.TrySetResult("Bidi");
            throw;
        }
    }

    private static TaskCompletionSource<string> NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static EchoReply Reply(EchoRequest request, int index) => new()
    {
        Message = request.Message,
        Payload = request.ResponseSize > 0 ? ByteString.CopyFrom(new byte[request.ResponseSize]) : request.Payload,
        Index = index,
    };

    private static async Task EchoMetadataAsync(ServerCallContext context)
    {
        if (context.RequestHeaders.GetValue("x-echo") is { } echo)
        {
            await context.WriteResponseHeadersAsync(new Metadata { { "x-echo", echo } });
        }

        if (context.RequestHeaders.GetValueBytes("x-echo-bin") is { } bytes)
        {
            context.ResponseTrailers.Add("x-echo-bin", bytes);
        }
    }

    private static void FailIfAsked(EchoRequest request, ServerCallContext context)
    {
        if (request.FailCode == 0)
        {
            return;
        }

        if (request.FailMessage == "throw")
        {
            throw new InvalidOperationException("secret internal detail");
        }

        context.ResponseTrailers.Add("x-failed", "yes");
        throw new RpcException(new Status((StatusCode)request.FailCode, request.FailMessage));
    }

    private async Task DelayAsync(EchoRequest request, ServerCallContext context, string method)
    {
        if (request.DelayMs <= 0)
        {
            return;
        }

        try
        {
            await Task.Delay(request.DelayMs, context.CancellationToken);
        }
        catch (OperationCanceledException)
        {
            Cancelled.TrySetResult(method);
            throw;
        }
    }
}
