using Exo.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Exo.ServiceDefaults;

/// <summary>
/// What every Exo service gets from one call, in the shape of Aspire's ServiceDefaults project: OpenTelemetry
/// (ASP.NET Core, HttpClient, gRPC client and runtime instrumentation, the <c>Exo.*</c> sources and meters) sent over
/// OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set and not collected when it is not; health checks on <c>/health</c>
/// and <c>/alive</c>, service discovery, the standard resilience handler on every HttpClient (gRPC clients opt out: see
/// <see cref="GrpcClients"/>), and the cluster's join secret (<see cref="ClusterSecret"/>) that gRPC clients send and
/// <see cref="ClusterSecretCheck"/> requires.
/// Redis instrumentation comes with Aspire's <c>AddRedisClient</c>, which registers it itself.
/// </summary>
public static class ServiceDefaultsExtensions
{
    public const string HealthPath = "/health";
    public const string AlivePath = "/alive";
    public const string StatusPath = "/api/cluster";
    /// <summary>Health checks with this tag decide liveness (<c>/alive</c>); all checks decide readiness (<c>/health</c>).</summary>
    public const string LiveTag = "live";
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";
    public const string OtlpProtocolKey = "OTEL_EXPORTER_OTLP_PROTOCOL";

    /// <param name="service">The service's name (<c>Planner</c> or <c>Exo.Planner</c>): its tracing source and meter.</param>
    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder, string? service = null) where TBuilder : IHostApplicationBuilder
    {
        var telemetry = new ServiceTelemetry(service ?? builder.Environment.ApplicationName, typeof(ServiceDefaultsExtensions).Assembly.GetName().Version?.ToString());
        builder.Services.AddSingleton(telemetry);
        builder.ConfigureOpenTelemetry();

        // A line per HTTP request, gRPC call or outgoing call (each heartbeat, each probe) drowns a service's own log;
        // a Logging:LogLevel setting of the same category overrides this.
        foreach (var category in new[] { "Microsoft.AspNetCore", "System.Net.Http.HttpClient" })
        {
            if (builder.Configuration[$"Logging:LogLevel:{category}"] is null) builder.Logging.AddFilter(category, LogLevel.Warning);
        }
        builder.Services.AddHealthChecks().AddCheck("self", () => HealthCheckResult.Healthy(), [LiveTag]);
        builder.Services.AddSingleton(new ClusterSecret(builder.Configuration[ClusterSecret.Setting])).AddSingleton<ClusterSecretCheck>();

        builder.Services.AddServiceDiscovery();
        builder.Services.ConfigureHttpClientDefaults(http =>
        {
            http.AddStandardResilienceHandler();
            http.AddServiceDiscovery();
        });
        return builder;
    }

    /// <summary>
    /// Maps <c>/health</c> (ready: every check passes) and <c>/alive</c> (live: the checks tagged <see cref="LiveTag"/>
    /// pass), open to anonymous callers (probes carry no API key).
    /// </summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthChecks(HealthPath).AllowAnonymous();
        app.MapHealthChecks(AlivePath, new HealthCheckOptions { Predicate = check => check.Tags.Contains(LiveTag) }).AllowAnonymous();
        return app;
    }

    private static void ConfigureOpenTelemetry(this IHostApplicationBuilder builder)
    {
        // With nowhere to send them, spans and measurements are not made at all: a worker started by hand pays nothing
        // per token for telemetry nobody reads.
        if (!UsesOtlp(builder.Configuration)) return;
        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });

        builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter(ServiceTelemetry.Prefix + "*"))
            .WithTracing(tracing => tracing
                .SetSampler(RequestSampler.ParentBased)
                .AddSource(ServiceTelemetry.Prefix + "*")
                // Health probes come several times a second while a cluster starts, and the web chat polls the cluster's
                // status every two seconds: they would bury the traces that matter.
                .AddAspNetCoreInstrumentation(o => o.Filter = context => !IsHealthProbe(context.Request.Path) && !IsStatusPoll(context.Request))
                .AddGrpcClientInstrumentation()
                .AddHttpClientInstrumentation(o => o.FilterHttpRequestMessage = request => !IsHealthProbe(request.RequestUri?.AbsolutePath)))
            .UseOtlpExporter();
    }

    /// <summary>
    /// Whether an OTLP endpoint is set. The exporter reads these settings itself; they are checked here so that a typo
    /// stops the service at start with the key's name, rather than telemetry silently going nowhere.
    /// </summary>
    private static bool UsesOtlp(IConfiguration configuration)
    {
        var endpoint = configuration[OtlpEndpointKey];
        if (string.IsNullOrWhiteSpace(endpoint)) return false;
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new InvalidOperationException($"{OtlpEndpointKey} is '{endpoint}', which is not an absolute http or https address");
        if (configuration[OtlpProtocolKey] is { Length: > 0 } protocol && protocol is not ("grpc" or "http/protobuf"))
            throw new InvalidOperationException($"{OtlpProtocolKey} is '{protocol}'; supported are grpc and http/protobuf");
        return true;
    }

    private static bool IsHealthProbe(PathString path) => path.StartsWithSegments(HealthPath) || path.StartsWithSegments(AlivePath);

    private static bool IsHealthProbe(string? path) => path is not null && IsHealthProbe(new PathString(path));

    /// <summary>Reading the cluster's status (<c>GET /api/cluster</c>), which pages and scripts poll.</summary>
    private static bool IsStatusPoll(HttpRequest request) => HttpMethods.IsGet(request.Method) && request.Path.StartsWithSegments(StatusPath);
}
