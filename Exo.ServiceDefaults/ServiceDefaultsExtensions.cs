using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Exo.ServiceDefaults;

/// <summary>
/// What every Exo service gets from one call, shaped like Aspire's ServiceDefaults project: OpenTelemetry traces,
/// metrics and logs, health endpoints and configuration-based discovery. The OpenTelemetry hosting and
/// instrumentation packages are not available here, so the providers are built with the SDK builders, held as
/// singletons the host disposes (flushing them), and subscribed to the sources and meters that ASP.NET Core and .NET
/// publish themselves.
/// </summary>
public static class ServiceDefaultsExtensions
{
    public const string HealthPath = "/health";
    public const string AlivePath = "/alive";
    /// <summary>Health checks with this tag decide liveness (<c>/alive</c>); all checks decide readiness (<c>/health</c>).</summary>
    public const string LiveTag = "live";
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";
    public const string OtlpProtocolKey = "OTEL_EXPORTER_OTLP_PROTOCOL";

    // Names of the ActivitySources and Meters built into ASP.NET Core and .NET, standing in for the instrumentation packages.
    private static readonly string[] Sources = ["Microsoft.AspNetCore", "Microsoft.AspNetCore.*", "System.Net.Http", ServiceTelemetry.Prefix + "*"];
    private static readonly string[] Meters =
        ["Microsoft.AspNetCore.*", "System.Net.Http", "System.Net.NameResolution", "System.Runtime", ServiceTelemetry.Prefix + "*"];

    /// <param name="service">The service's name (<c>Planner</c> or <c>Exo.Planner</c>); the application name when not given.</param>
    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder, string? service = null) where TBuilder : IHostApplicationBuilder
    {
        var telemetry = new ServiceTelemetry(service ?? builder.Environment.ApplicationName, typeof(ServiceDefaultsExtensions).Assembly.GetName().Version?.ToString());
        builder.Services.AddSingleton(telemetry);
        builder.AddOpenTelemetry(telemetry.Name);
        // A line per HTTP request and gRPC call drowns a service's own log; Logging:LogLevel:Microsoft.AspNetCore overrides.
        if (builder.Configuration["Logging:LogLevel:Microsoft.AspNetCore"] is null) builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Services.AddHealthChecks().AddCheck("self", () => HealthCheckResult.Healthy(), [LiveTag]);
        return builder;
    }

    /// <summary>Maps <c>/health</c> (ready: every check passes) and <c>/alive</c> (live: the checks tagged <see cref="LiveTag"/> pass).</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthChecks(HealthPath);
        app.MapHealthChecks(AlivePath, new HealthCheckOptions { Predicate = check => check.Tags.Contains(LiveTag) });
        return app;
    }

    private static void AddOpenTelemetry(this IHostApplicationBuilder builder, string serviceName)
    {
        var otlp = OtlpSettings(builder.Configuration);
        var instance = $"{Environment.MachineName}-{Environment.ProcessId}";
        void Describe(ResourceBuilder resource) => resource.AddService(serviceName, serviceInstanceId: instance);

        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
            var resource = ResourceBuilder.CreateDefault();
            Describe(resource);
            logging.SetResourceBuilder(resource);
            if (otlp is { } settings) logging.AddOtlpExporter(o => settings.Apply(o, "v1/logs"));
        });

        builder.Services.AddSingleton(_ =>
        {
            var tracing = Sdk.CreateTracerProviderBuilder().ConfigureResource(Describe).AddSource(Sources);
            if (otlp is { } settings) tracing.AddOtlpExporter(o => settings.Apply(o, "v1/traces"));
            return tracing.Build();
        });
        builder.Services.AddSingleton(_ =>
        {
            var metrics = Sdk.CreateMeterProviderBuilder().ConfigureResource(Describe).AddMeter(Meters);
            if (otlp is { } settings) metrics.AddOtlpExporter(o => settings.Apply(o, "v1/metrics"));
            return metrics.Build();
        });
        // Singletons are built on first use; this builds them when the host starts so nothing is missed.
        builder.Services.AddHostedService<TelemetryStarter>();
    }

    private static OtlpSettings? OtlpSettings(IConfiguration configuration)
    {
        var endpoint = configuration[OtlpEndpointKey];
        if (string.IsNullOrWhiteSpace(endpoint)) return null;
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new InvalidOperationException($"{OtlpEndpointKey} is '{endpoint}', which is not an absolute http or https address");
        var protocol = configuration[OtlpProtocolKey] switch
        {
            null or "" or "grpc" => OtlpExportProtocol.Grpc,
            "http/protobuf" => OtlpExportProtocol.HttpProtobuf,
            var other => throw new InvalidOperationException($"{OtlpProtocolKey} is '{other}'; supported are grpc and http/protobuf"),
        };
        return new OtlpSettings(uri, protocol);
    }

    /// <summary>Asking for the providers is what builds them; the host disposes them, flushing what is left to export.</summary>
    private sealed class TelemetryStarter(TracerProvider tracing, MeterProvider metrics) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            GC.KeepAlive(tracing);
            GC.KeepAlive(metrics);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

/// <summary>Where and how to export OTLP, read from the standard OTEL_EXPORTER_OTLP_* settings.</summary>
internal sealed record OtlpSettings(Uri Endpoint, OtlpExportProtocol Protocol)
{
    /// <summary>
    /// An endpoint set in code is used as given, so over HTTP it needs the signal's path appended, as the exporter
    /// itself does when it reads the environment.
    /// </summary>
    public void Apply(OtlpExporterOptions options, string signalPath)
    {
        options.Protocol = Protocol;
        options.Endpoint = Protocol == OtlpExportProtocol.HttpProtobuf
            ? new Uri(Endpoint.AbsoluteUri.TrimEnd('/') + "/" + signalPath)
            : Endpoint;
    }
}
