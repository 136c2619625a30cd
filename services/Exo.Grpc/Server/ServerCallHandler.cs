using Exo.Grpc.Protocol;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Exo.Grpc.Server;

/// <summary>Runs one method's calls: validates the request, reads and writes messages, and ends with a status.</summary>
internal sealed class ServerCallHandler<TRequest, TResponse>(
    Method<TRequest, TResponse> method,
    Delegate handler,
    GrpcServiceOptions options,
    GrpcServerActivity activity,
    ILogger logger)
    where TRequest : class
    where TResponse : class
{
    public async Task HandleAsync(HttpContext http)
    {
        if (!ServerCallHelpers.TryAcceptRequest(http, out var encoding))
        {
            return;
        }

        activity.CallStarted();
        var call = ServerCallHelpers.StartCall(http, method.FullName, options, encoding);
        try
        {
            Status status;
            try
            {
                await InvokeAsync(call).ConfigureAwait(false);
                status = call.Context.Status;
            }
            catch (Exception ex)
            {
                status = ServerCallHelpers.StatusFromException(call, ex, options, logger);
            }

            await ServerCallHelpers.EndCallAsync(call, status).ConfigureAwait(false);
        }
        finally
        {
            call.Dispose();
            activity.CallEnded();
        }
    }

    private async Task InvokeAsync(ServerCall call)
    {
        var context = call.Context;
        switch (handler)
        {
            case UnaryServerMethod<TRequest, TResponse> unary:
            {
                var request = await ReadSingleRequestAsync(call).ConfigureAwait(false);
                var response = await unary(request, context).ConfigureAwait(false);
                await new ServerStreamWriter<TResponse>(call, method.ResponseMarshaller).WriteAsync(response, context.CancellationToken).ConfigureAwait(false);
                break;
            }

            case ClientStreamingServerMethod<TRequest, TResponse> clientStreaming:
            {
                var response = await clientStreaming(new ServerStreamReader<TRequest>(call, method.RequestMarshaller), context).ConfigureAwait(false);
                await new ServerStreamWriter<TResponse>(call, method.ResponseMarshaller).WriteAsync(response, context.CancellationToken).ConfigureAwait(false);
                break;
            }

            case ServerStreamingServerMethod<TRequest, TResponse> serverStreaming:
            {
                var request = await ReadSingleRequestAsync(call).ConfigureAwait(false);
                await serverStreaming(request, new ServerStreamWriter<TResponse>(call, method.ResponseMarshaller), context).ConfigureAwait(false);
                break;
            }

            case DuplexStreamingServerMethod<TRequest, TResponse> duplex:
                await duplex(
                    new ServerStreamReader<TRequest>(call, method.RequestMarshaller),
                    new ServerStreamWriter<TResponse>(call, method.ResponseMarshaller),
                    context).ConfigureAwait(false);
                break;

            default:
                throw new InvalidOperationException($"Handler of {method.FullName} has an unexpected type {handler.GetType()}.");
        }
    }

    /// <summary>Unary and server-streaming requests carry exactly one message.</summary>
    private async Task<TRequest> ReadSingleRequestAsync(ServerCall call)
    {
        var reader = new ServerStreamReader<TRequest>(call, method.RequestMarshaller);
        var token = call.Context.CancellationToken;
        if (!await reader.MoveNext(token).ConfigureAwait(false))
        {
            throw new RpcException(new Status(StatusCode.Internal, "The request ended without a message."));
        }

        var request = reader.Current;
        if (await reader.MoveNext(token).ConfigureAwait(false))
        {
            throw new RpcException(new Status(StatusCode.Internal, "The request carried more than one message."));
        }

        return request;
    }
}

/// <summary>The per-call state shared by the context, the stream reader and the stream writer.</summary>
internal sealed class ServerCall(HttpContext http, ServerCallContext context, GrpcMessageReader reader, GrpcMessageWriter writer, CancellationTokenSource? deadlineCts, CancellationTokenSource? linkedCts, CancellationToken serverStopping)
    : IDisposable
{
    public HttpContext Http => http;

    public ServerCallContext Context => context;

    public GrpcMessageReader Reader => reader;

    public GrpcMessageWriter Writer => writer;

    public bool DeadlineExceeded => deadlineCts?.IsCancellationRequested == true;

    public bool ServerStopping => serverStopping.IsCancellationRequested;

    public bool MessageWritten { get; set; }

    public void Dispose()
    {
        linkedCts?.Dispose();
        deadlineCts?.Dispose();
    }
}

internal static class ServerCallHelpers
{
    /// <summary>Rejects what is not a gRPC call (wrong protocol, content type or encoding) before any handler runs.</summary>
    public static bool TryAcceptRequest(HttpContext http, out string? encoding)
    {
        encoding = null;
        if (!GrpcProtocol.IsGrpcContentType(http.Request.ContentType))
        {
            // The spec asks for HTTP 415 for a non-gRPC content type.
            http.Response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            return false;
        }

        if (!HttpProtocol.IsHttp2(http.Request.Protocol))
        {
            WriteTrailersOnly(http, new Status(StatusCode.Internal, $"Request protocol '{http.Request.Protocol}' is not supported; gRPC needs HTTP/2."));
            return false;
        }

        var requested = http.Request.Headers[GrpcProtocol.EncodingHeader].ToString();
        if (requested.Length > 0
            && !requested.Equals(GrpcProtocol.Identity, StringComparison.OrdinalIgnoreCase)
            && !requested.Equals(GrpcProtocol.Gzip, StringComparison.OrdinalIgnoreCase))
        {
            WriteTrailersOnly(http, new Status(StatusCode.Unimplemented, $"Unsupported grpc-encoding '{requested}'. Supported: {GrpcProtocol.SupportedEncodings}."));
            return false;
        }

        encoding = requested.Length > 0 ? requested : null;
        return true;
    }

    public static ServerCall StartCall(HttpContext http, string methodName, GrpcServiceOptions options, string? encoding)
    {
        // gRPC streams are long-lived and may be idle or large: Kestrel's body size and rate limits do not apply.
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
        {
            sizeFeature.MaxRequestBodySize = null;
        }

        if (http.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rateFeature)
        {
            rateFeature.MinDataRate = null;
        }

        if (http.Features.Get<IHttpMinResponseDataRateFeature>() is { } responseRate)
        {
            responseRate.MinDataRate = null;
        }

        CancellationTokenSource? deadlineCts = null;
        CancellationTokenSource? linkedCts = null;
        var token = http.RequestAborted;
        var deadline = DateTime.MaxValue;
        // Long-lived streams end when the host stops, so that shutting down does not wait for clients to hang up.
        var stopping = http.RequestServices.GetService<IHostApplicationLifetime>()?.ApplicationStopping ?? CancellationToken.None;
        if (GrpcProtocol.TryParseTimeout(http.Request.Headers[GrpcProtocol.TimeoutHeader].ToString(), out var timeout))
        {
            deadline = timeout >= DateTime.MaxValue - DateTime.UtcNow ? DateTime.MaxValue : DateTime.UtcNow + timeout;
            deadlineCts = new CancellationTokenSource(timeout > TimeSpan.FromDays(49) ? Timeout.InfiniteTimeSpan : timeout);
            linkedCts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, deadlineCts.Token, stopping);
            token = linkedCts.Token;
        }
        else if (stopping.CanBeCanceled)
        {
            linkedCts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, stopping);
            token = linkedCts.Token;
        }

        var response = http.Response;
        response.ContentType = GrpcProtocol.ContentType;
        response.Headers[GrpcProtocol.AcceptEncodingHeader] = GrpcProtocol.SupportedEncodings;
        var gzipResponse = options.ResponseCompressionAlgorithm is { } algorithm
            && algorithm.Equals(GrpcProtocol.Gzip, StringComparison.OrdinalIgnoreCase)
            && http.Request.Headers[GrpcProtocol.AcceptEncodingHeader].ToString().Contains(GrpcProtocol.Gzip, StringComparison.OrdinalIgnoreCase);
        if (gzipResponse)
        {
            response.Headers[GrpcProtocol.EncodingHeader] = GrpcProtocol.Gzip;
        }

        var context = new ServerCallContext(http, methodName, deadline, token);
        return new ServerCall(
            http,
            context,
            new GrpcMessageReader(http.Request.BodyReader, options.MaxReceiveMessageSize, encoding),
            new GrpcMessageWriter(http.Response.BodyWriter, options.MaxSendMessageSize, gzipResponse),
            deadlineCts,
            linkedCts,
            stopping);
    }

    public static Status StatusFromException(ServerCall call, Exception ex, GrpcServiceOptions options, ILogger logger)
    {
        if (call.DeadlineExceeded)
        {
            return new Status(StatusCode.DeadlineExceeded, "Deadline exceeded.");
        }

        if (call.Http.RequestAborted.IsCancellationRequested)
        {
            return new Status(StatusCode.Cancelled, "The client cancelled the call.");
        }

        if (call.ServerStopping && ex is OperationCanceledException)
        {
            return new Status(StatusCode.Unavailable, "The server is shutting down.");
        }

        if (ex is RpcException rpc)
        {
            foreach (var entry in rpc.Trailers)
            {
                call.Context.ResponseTrailers.Add(entry);
            }

            return rpc.Status;
        }

        logger.LogError(ex, "gRPC handler for {Method} threw.", call.Context.Method);
        return new Status(
            StatusCode.Unknown,
            options.EnableDetailedErrors ? $"Exception was thrown by handler. {ex}" : "Exception was thrown by handler.");
    }

    /// <summary>
    /// Sends the status. With no message or header sent yet this is a trailers-only response (one HEADERS frame);
    /// otherwise trailers follow the data. A call whose client is gone sends nothing.
    /// </summary>
    public static async Task EndCallAsync(ServerCall call, Status status)
    {
        var http = call.Http;
        if (http.RequestAborted.IsCancellationRequested)
        {
            return;
        }

        if (!call.MessageWritten && !call.Context.ResponseHeadersSent && !http.Response.HasStarted)
        {
            // No body follows, so no body encoding either.
            http.Response.Headers.Remove(GrpcProtocol.EncodingHeader);
            WriteTrailersOnly(http, status, call.Context.ResponseTrailers);
            return;
        }

        var trailers = http.Features.Get<IHttpResponseTrailersFeature>()?.Trailers;
        if (trailers is null || trailers.IsReadOnly)
        {
            // Without trailers the client cannot learn the status: reset the stream so it does not take silence for OK.
            http.Features.Get<IHttpResetFeature>()?.Reset(GrpcProtocol.Http2CancelErrorCode);
            return;
        }

        trailers[GrpcProtocol.StatusHeader] = ((int)status.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (status.Detail.Length > 0)
        {
            trailers[GrpcProtocol.MessageHeader] = GrpcProtocol.EncodeMessage(status.Detail);
        }

        foreach (var entry in call.Context.ResponseTrailers)
        {
            trailers.Append(entry.Key, GrpcProtocol.EncodeValue(entry));
        }

        if (call.DeadlineExceeded)
        {
            // The client may have stopped reading; do not wait on flow control to deliver the trailers.
            http.Features.Get<IHttpResetFeature>()?.Reset(GrpcProtocol.Http2CancelErrorCode);
            return;
        }

        try
        {
            await http.Response.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException)
        {
            // The client went away while the last bytes were in flight; nothing is left to tell it.
        }
    }

    public static void WriteTrailersOnly(HttpContext http, Status status, Metadata? trailers = null)
    {
        var headers = http.Response.Headers;
        http.Response.ContentType = GrpcProtocol.ContentType;
        headers[GrpcProtocol.StatusHeader] = ((int)status.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (status.Detail.Length > 0)
        {
            headers[GrpcProtocol.MessageHeader] = GrpcProtocol.EncodeMessage(status.Detail);
        }

        if (trailers is not null)
        {
            foreach (var entry in trailers)
            {
                headers.Append(entry.Key, GrpcProtocol.EncodeValue(entry));
            }
        }
    }
}
