using Exo.Gateway.Edge;
using System.Net;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.LoadBalancing;

namespace Exo.Gateway.Proxy;

/// <summary>
/// The reverse proxy in front of the API replicas: /v1 (OpenAI's API) and /api (the cluster view) go to
/// <c>http://api</c>, which service discovery expands into the replicas (<c>services:api:http:N</c>, set by the
/// AppHost's reference). Replicas are health-checked actively (/health) and passively (transport failures), balanced
/// by fewest requests in flight (generations are long and uneven), and streamed answers pass through unbuffered.
/// </summary>
public static partial class ApiProxy
{
    public const string ClusterId = "api";
    public const string ServiceAddress = "http://api";

    /// <summary>Where the API listens when it is started by hand, beneath every other configuration source.</summary>
    public const string DefaultReplica = "http://127.0.0.1:52420";

    public static IReverseProxyBuilder AddApiProxy(this IServiceCollection services, GatewayOptions options)
    {
        // A replica that fails a connection is set aside at once for the reactivation period; active checks bring it back.
        services.Configure<TransportFailureRateHealthPolicyOptions>(o => o.MinimalTotalCountThreshold = 1);
        services.AddSingleton<RequestBodyLimit>().AddSingleton<ProxyErrors>().AddSingleton<RetryOnAnotherReplica>();
        return services.AddReverseProxy()
            .LoadFromMemory(Routes(), [Cluster(options)])
            .AddServiceDiscoveryDestinationResolver();
    }

    private static RouteConfig[] Routes() =>
    [
        Route("openai", "/v1/{**rest}"),
        Route("cluster", "/api/{**rest}"),
    ];

    private static RouteConfig Route(string id, string path) => new()
    {
        RouteId = id,
        ClusterId = ClusterId,
        Match = new RouteMatch { Path = path },
        RateLimiterPolicy = RateLimits.Policy,
    };

    private static ClusterConfig Cluster(GatewayOptions options) => new()
    {
        ClusterId = ClusterId,
        LoadBalancingPolicy = LoadBalancingPolicies.LeastRequests,
        Destinations = new Dictionary<string, DestinationConfig> { ["api"] = new() { Address = ServiceAddress } },
        HealthCheck = new HealthCheckConfig
        {
            Active = new ActiveHealthCheckConfig
            {
                Enabled = true,
                Interval = TimeSpan.FromSeconds(5),
                Timeout = TimeSpan.FromSeconds(3),
                Policy = HealthCheckConstants.ActivePolicy.ConsecutiveFailures,
                Path = "/health",
            },
            Passive = new PassiveHealthCheckConfig
            {
                Enabled = true,
                Policy = HealthCheckConstants.PassivePolicy.TransportFailureRate,
                ReactivationPeriod = TimeSpan.FromSeconds(15),
            },
            AvailableDestinationsPolicy = HealthCheckConstants.AvailableDestinations.HealthyOrPanic,
        },
        // No response buffering is YARP's default: each server-sent event is flushed to the client as it arrives.
        HttpRequest = new ForwarderRequestConfig
        {
            // The API's endpoint speaks HTTP/1.1 (h2c cannot be negotiated), so there is nothing to try first.
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
            ActivityTimeout = TimeSpan.FromSeconds(options.ActivityTimeoutSeconds),
        },
    };

    /// <summary>Maps the proxy, with the body-size check ahead of it (after the edge's rate limit and API key), then its errors, retry and balancing.</summary>
    public static WebApplication MapApiProxy(this WebApplication app)
    {
        var replicas = app.Configuration.GetSection("services:api:http").GetChildren().Select(c => c.Value);
        LogReplicas(app.Logger, string.Join(", ", replicas));
        app.MapReverseProxy(proxy =>
        {
            proxy.UseMiddleware<RequestBodyLimit>();
            proxy.UseMiddleware<ProxyErrors>();
            proxy.UseMiddleware<RetryOnAnotherReplica>();
            proxy.UseLoadBalancing();
            proxy.UsePassiveHealthChecks();
        });
        return app;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Proxying /v1 and /api to the API replicas {Replicas}")]
    private static partial void LogReplicas(ILogger logger, string replicas);
}
