using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.Hosting;

namespace Exo.ServiceDefaults;

/// <summary>
/// Where a service listens: Kestrel's own configuration, endpoint <c>http</c> (HTTP/1.1: health, HTTP APIs) and, for
/// gRPC services, <c>grpc</c> (h2c, HTTP/2 only, since h2c cannot be negotiated). The AppHost sets
/// <c>Kestrel__Endpoints__NAME__Url</c>; these defaults apply to a service started by hand.
/// </summary>
public static class KestrelEndpoints
{
    public const string Http = "http";
    public const string Grpc = "grpc";

    public static string UrlKey(string endpoint) => $"Kestrel:Endpoints:{endpoint}:Url";

    /// <summary>Default endpoints, beneath every other configuration source so that any setting overrides them.</summary>
    /// <param name="httpPort">HTTP/1.1 on loopback.</param>
    /// <param name="grpcPort">h2c gRPC, by default on every interface, where other machines reach it; none when null.</param>
    public static TBuilder AddDefaultEndpoints<TBuilder>(this TBuilder builder, int httpPort, int? grpcPort = null, string grpcAddress = "0.0.0.0")
        where TBuilder : IHostApplicationBuilder
    {
        var defaults = new Dictionary<string, string?> { [UrlKey(Http)] = $"http://127.0.0.1:{httpPort}" };
        if (grpcPort is { } port)
        {
            defaults[UrlKey(Grpc)] = $"http://{grpcAddress}:{port}";
            defaults[$"Kestrel:Endpoints:{Grpc}:Protocols"] = "Http2";
        }

        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = defaults });
        return builder;
    }

    /// <summary>The configured URL of <paramref name="endpoint"/>; a malformed one names the key to fix.</summary>
    public static Uri Url(this IConfiguration configuration, string endpoint)
    {
        var value = configuration[UrlKey(endpoint)];
        return Uri.TryCreate(value, UriKind.Absolute, out var url) && url.Scheme is "http" or "https"
            ? url
            : throw new InvalidOperationException($"{UrlKey(endpoint)} is '{value}', which is not a URL like http://0.0.0.0:52418");
    }
}
