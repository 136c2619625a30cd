using System.Net;
using System.Net.Security;

namespace Exo.Grpc;

/// <summary>Client settings, as in grpc-dotnet's <c>GrpcChannelOptions</c>.</summary>
public sealed class GrpcChannelOptions
{
    /// <summary>A handler to send calls through; by default the channel builds a <see cref="SocketsHttpHandler"/> tuned for gRPC.</summary>
    public HttpMessageHandler? HttpHandler { get; set; }

    /// <summary>Whether disposing the channel disposes <see cref="HttpHandler"/>.</summary>
    public bool DisposeHttpHandler { get; set; } = true;

    /// <summary>Largest response message accepted; larger ones fail with RESOURCE_EXHAUSTED. Null: no limit.</summary>
    public int? MaxReceiveMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest request message sent; larger ones fail with RESOURCE_EXHAUSTED. Null: no limit.</summary>
    public int? MaxSendMessageSize { get; set; }

    /// <summary>grpc-encoding for request messages ("gzip"); null sends identity.</summary>
    public string? SendCompression { get; set; }

    /// <summary>HTTP/2 PING interval on an idle-looking connection, so dead peers are noticed. Infinite disables.</summary>
    public TimeSpan KeepAlivePingDelay { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Validates the server's certificate for https addresses (e.g. to trust a cluster's own CA). Null: the system's rules.</summary>
    public RemoteCertificateValidationCallback? RemoteCertificateValidationCallback { get; set; }
}

/// <summary>
/// A connection to one gRPC server address. <c>http://</c> speaks cleartext HTTP/2 with prior knowledge (h2c),
/// <c>https://</c> negotiates h2 over TLS. Calls share one HTTP/2 connection and open more only when its
/// concurrent-stream limit is reached.
/// </summary>
public sealed class GrpcChannel : IDisposable
{
    private readonly HttpMessageHandler _handler;
    private readonly HttpMessageInvoker _invoker;
    private readonly bool _disposeHandler;

    private GrpcChannel(Uri address, GrpcChannelOptions options)
    {
        Address = address;
        Options = options;
        _handler = options.HttpHandler ?? CreateHandler(options);
        _disposeHandler = options.HttpHandler is null || options.DisposeHttpHandler;
        _invoker = new HttpMessageInvoker(_handler, disposeHandler: false);
    }

    public Uri Address { get; }

    internal GrpcChannelOptions Options { get; }

    internal HttpMessageInvoker Invoker => _invoker;

    public static GrpcChannel ForAddress(string address, GrpcChannelOptions? options = null) => ForAddress(new Uri(address), options);

    public static GrpcChannel ForAddress(Uri address, GrpcChannelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps)
        {
            throw new ArgumentException($"Address '{address}' must use http:// (h2c) or https:// (TLS).", nameof(address));
        }

        return new GrpcChannel(address, options ?? new GrpcChannelOptions());
    }

    public CallInvoker CreateCallInvoker() => new Client.HttpCallInvoker(this);

    public void Dispose()
    {
        _invoker.Dispose();
        if (_disposeHandler)
        {
            _handler.Dispose();
        }
    }

    private static SocketsHttpHandler CreateHandler(GrpcChannelOptions options)
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            KeepAlivePingDelay = options.KeepAlivePingDelay,
            KeepAlivePingTimeout = options.KeepAlivePingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            // The default stream window grows with what the caller actually reads; a large fixed initial window
            // let a server push ~100 MB ahead of a caller that had stopped reading.
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
        };
        if (options.RemoteCertificateValidationCallback is { } validate)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = validate;
        }

        return handler;
    }
}
