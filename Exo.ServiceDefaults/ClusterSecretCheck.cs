using Exo.Contracts;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;

namespace Exo.ServiceDefaults;

/// <summary>
/// Lets a gRPC call in only with the cluster's join secret (<see cref="ClusterSecret"/>), when one is configured: the
/// registry, the planner and the shard workers add it to their services (<c>AddGrpc(o =&gt; o.Interceptors.Add&lt;ClusterSecretCheck&gt;())</c>).
/// A refusal is <see cref="StatusCode.Unauthenticated"/> with what to set, which the caller's log shows.
/// </summary>
public sealed partial class ClusterSecretCheck(ClusterSecret secret, ILogger<ClusterSecretCheck> logger) : Interceptor
{
    /// <summary>grpc.health stays open, as /health does: probes carry no secret and learn nothing of the cluster.</summary>
    private const string HealthService = "/grpc.health.v1.Health/";

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, responseStream, context);
    }

    private void Check(ServerCallContext context)
    {
        if (context.Method.StartsWith(HealthService, StringComparison.Ordinal)) return;
        if (secret.Refusal(context.RequestHeaders.GetValue(ClusterSecret.Header)) is not { } refusal) return;
        LogRefused(context.Method, context.Peer, refusal);
        throw new RpcException(new Status(StatusCode.Unauthenticated, refusal));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused {Method} from {Peer}: {Refusal}")]
    private partial void LogRefused(string method, string peer, string refusal);
}
