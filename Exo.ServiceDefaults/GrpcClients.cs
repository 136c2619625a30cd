using Exo.Contracts;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Exo.ServiceDefaults;

/// <summary>gRPC clients of the cluster's own services, found by service discovery.</summary>
public static class GrpcClients
{
    /// <summary>
    /// A client of <paramref name="service"/>'s <c>grpc</c> endpoint, at <c>http://_grpc.SERVICE</c>: the AppHost's
    /// reference gives it as <c>services__SERVICE__grpc__0</c>, and a worker started by hand sets the same key
    /// (<c>--registry URL</c>). The standard resilience handler is taken off: its total timeout would cut the
    /// long-lived watch streams, which reconnect by themselves (<see cref="StreamFollowing"/>). Every call carries the
    /// cluster's join secret.
    /// </summary>
    // RemoveAllResilienceHandlers is marked experimental (EXTEXP0001); it is the documented way to opt one client out.
#pragma warning disable EXTEXP0001
    public static IHttpClientBuilder AddServiceGrpcClient<TClient>(this IServiceCollection services, string service) where TClient : class =>
        services.AddGrpcClient<TClient>(o => o.Address = new Uri($"http://_grpc.{service}"))
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                // A dead peer is noticed by a ping within seconds, not at the next write.
                KeepAlivePingDelay = TimeSpan.FromSeconds(5),
                KeepAlivePingTimeout = TimeSpan.FromSeconds(5),
                KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
                EnableMultipleHttp2Connections = true,
            })
            .AddInterceptor(sp => sp.GetRequiredService<ClusterSecret>().Interceptor)
            .RemoveAllResilienceHandlers();
#pragma warning restore EXTEXP0001

    /// <summary>
    /// Checks that <paramref name="service"/>'s gRPC address is configured (<c>services__SERVICE__grpc__0</c>), so that a
    /// process started by hand without it stops at once with the key to set instead of retrying an unknown name forever.
    /// </summary>
    public static void RequireServiceAddress(this IConfiguration configuration, string service)
    {
        var key = $"services__{service}__grpc__0";
        var value = configuration[$"services:{service}:grpc:0"];
        if (string.IsNullOrWhiteSpace(value)) throw new InvalidOperationException($"no address for the {service}: set {key}");
        if (!(Uri.TryCreate(value, UriKind.Absolute, out var url) && url.Scheme is "http" or "https"))
            throw new InvalidOperationException($"{key} is '{value}', which is not an absolute http or https address");
    }
}
