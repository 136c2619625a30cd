using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Exo.Grpc;

/// <summary>Kestrel set up for gRPC: HTTP/2 only, cleartext with prior knowledge (h2c) unless a certificate is given.</summary>
public static class GrpcKestrelExtensions
{
    /// <summary>Listens on <paramref name="endpoint"/> (port 0 picks a free port) for gRPC.</summary>
    public static IWebHostBuilder UseGrpcEndpoint(this IWebHostBuilder builder, IPEndPoint endpoint, X509Certificate2? certificate = null) =>
        builder.ConfigureKestrel(kestrel =>
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
        });

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
