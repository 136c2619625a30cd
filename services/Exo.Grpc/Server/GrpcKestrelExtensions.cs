using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Exo.Grpc;

/// <summary>Kestrel set up for gRPC: HTTP/2 only, cleartext with prior knowledge (h2c) unless a certificate is given.</summary>
public static class GrpcKestrelExtensions
{
    /// <summary>
    /// Listens on <paramref name="endpoint"/> (port 0 picks a free port) for gRPC. The addresses of <c>--urls</c> /
    /// <c>ASPNETCORE_URLS</c> keep serving plain HTTP/1.1 (health checks, metrics), which Kestrel would
    /// otherwise drop as soon as an endpoint is configured in code.
    /// </summary>
    public static IWebHostBuilder UseGrpcEndpoint(this IWebHostBuilder builder, IPEndPoint endpoint, X509Certificate2? certificate = null)
    {
        var urls = builder.GetSetting(WebHostDefaults.ServerUrlsKey);
        return builder.ConfigureKestrel(kestrel =>
        {
            ConfigureLimits(kestrel.Limits);
            kestrel.Listen(endpoint, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                if (certificate is not null)
                {
                    listen.UseHttps(certificate);
                }
            });
            foreach (var url in (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                ListenHttp(kestrel, url);
            }
        });
    }

    private static void ListenHttp(KestrelServerOptions kestrel, string url)
    {
        // "+" and "*" are the wildcard hosts ASP.NET accepts in URLs; Uri does not parse them.
        var normalized = url.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal);
        if (!Uri.TryCreate(normalized, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp)
            throw new InvalidOperationException($"URL '{url}' is not an http://host:port address; a gRPC service serves plain HTTP on --urls and gRPC on its gRPC port");
        Action<ListenOptions> http = listen => listen.Protocols = HttpProtocols.Http1;
        if (uri.IsLoopback && uri.Host == "localhost") kestrel.ListenLocalhost(uri.Port, http);
        else if (IPAddress.TryParse(uri.Host, out var address)) kestrel.Listen(address, uri.Port, http);
        else kestrel.ListenAnyIP(uri.Port, http);
    }

    /// <summary>
    /// HTTP/2 limits suited to long-lived streams carrying tens of KB per message: larger flow-control windows so a
    /// stream is not throttled to a round trip per window, more concurrent streams, and keep-alive pings.
    /// </summary>
    public static void ConfigureLimits(KestrelServerLimits limits)
    {
        limits.Http2.InitialConnectionWindowSize = 8 * 1024 * 1024;
        limits.Http2.InitialStreamWindowSize = 4 * 1024 * 1024;
        limits.Http2.MaxStreamsPerConnection = 1000;
        limits.Http2.KeepAlivePingDelay = TimeSpan.FromSeconds(30);
        limits.Http2.KeepAlivePingTimeout = TimeSpan.FromSeconds(20);
        limits.MinResponseDataRate = null;
        limits.MinRequestBodyDataRate = null;
    }
}
