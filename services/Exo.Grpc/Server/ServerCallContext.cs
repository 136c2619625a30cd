using Exo.Grpc.Protocol;
using Microsoft.AspNetCore.Http;

namespace Exo.Grpc;

/// <summary>What a handler knows about its call: headers, deadline, cancellation, and the trailers and status it sends.</summary>
public sealed class ServerCallContext
{
    private readonly HttpContext _httpContext;
    private Metadata? _requestHeaders;

    internal ServerCallContext(HttpContext httpContext, string method, DateTime deadline, CancellationToken cancellationToken)
    {
        _httpContext = httpContext;
        Method = method;
        Deadline = deadline;
        CancellationToken = cancellationToken;
    }

    /// <summary>The full method name, <c>/package.Service/Method</c>.</summary>
    public string Method { get; }

    public string Host => _httpContext.Request.Host.Value ?? "";

    /// <summary>The peer address in the <c>ipv4:1.2.3.4:5</c> / <c>ipv6:[::1]:5</c> form used by gRPC.</summary>
    public string Peer
    {
        get
        {
            var connection = _httpContext.Connection;
            return connection.RemoteIpAddress switch
            {
                null => "unknown",
                { AddressFamily: System.Net.Sockets.AddressFamily.InterNetworkV6 } ip => $"ipv6:[{ip}]:{connection.RemotePort}",
                var ip => $"ipv4:{ip}:{connection.RemotePort}",
            };
        }
    }

    /// <summary>When the client gives up; <see cref="DateTime.MaxValue"/> when it sent no grpc-timeout.</summary>
    public DateTime Deadline { get; }

    /// <summary>Cancelled when the client cancels, disconnects or the deadline passes.</summary>
    public CancellationToken CancellationToken { get; }

    public Metadata RequestHeaders => _requestHeaders ??= ReadRequestHeaders();

    /// <summary>Trailers sent with the status when the call ends.</summary>
    public Metadata ResponseTrailers { get; } = new();

    /// <summary>The status sent when the handler returns normally; defaults to OK.</summary>
    public Status Status { get; set; } = Status.DefaultSuccess;

    internal bool ResponseHeadersSent { get; private set; }

    public HttpContext GetHttpContext() => _httpContext;

    /// <summary>Sends response headers now (at most once, before any message).</summary>
    public async Task WriteResponseHeadersAsync(Metadata responseHeaders)
    {
        ArgumentNullException.ThrowIfNull(responseHeaders);
        if (ResponseHeadersSent)
        {
            throw new InvalidOperationException("Response headers can only be sent once per call.");
        }

        foreach (var entry in responseHeaders)
        {
            _httpContext.Response.Headers.Append(entry.Key, GrpcProtocol.EncodeValue(entry));
        }

        ResponseHeadersSent = true;
        await _httpContext.Response.BodyWriter.FlushAsync(CancellationToken).ConfigureAwait(false);
    }

    internal void MarkResponseStarted() => ResponseHeadersSent = true;

    private Metadata ReadRequestHeaders()
    {
        var metadata = new Metadata();
        foreach (var (name, values) in _httpContext.Request.Headers)
        {
            GrpcProtocol.AddHeaderTo(metadata, name, values);
        }

        return metadata;
    }
}
