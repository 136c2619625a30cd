using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using Exo.ServiceDefaults;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;

namespace Exo.ServiceDefaults.Tests;

public sealed class ServiceDefaultsTests
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>Starts a service on real Kestrel at 127.0.0.1 on a free port.</summary>
    private static async Task<(WebApplication App, Uri Address)> StartAsync(Action<WebApplicationBuilder>? configure = null,
        params (string Key, string Value)[] settings)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration.AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value)));
        builder.AddServiceDefaults("Defaults");
        configure?.Invoke(builder);
        var app = builder.Build();
        app.MapDefaultEndpoints();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        return (app, new Uri(address));
    }

    private static async Task<(HttpStatusCode Status, string Body)> Get(Uri address, string path)
    {
        using var response = await Http.GetAsync(new Uri(address, path));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task HealthAndAliveAnswerOnKestrel()
    {
        var (app, address) = await StartAsync();
        await using (app)
        {
            Assert.Equal((HttpStatusCode.OK, "Healthy"), await Get(address, "/health"));
            Assert.Equal((HttpStatusCode.OK, "Healthy"), await Get(address, "/alive"));
            // No OTLP endpoint: nothing collects the service's spans, so none are made.
            Assert.False(app.Services.GetRequiredService<ServiceTelemetry>().ActivitySource.HasListeners());
        }
    }

    [Fact]
    public async Task AServiceThatIsNotReadyIsStillAlive()
    {
        var (app, address) = await StartAsync(builder =>
            builder.Services.AddHealthChecks().AddCheck("model-loaded", () => HealthCheckResult.Unhealthy("still loading")));
        await using (app)
        {
            Assert.Equal((HttpStatusCode.ServiceUnavailable, "Unhealthy"), await Get(address, "/health"));
            Assert.Equal((HttpStatusCode.OK, "Healthy"), await Get(address, "/alive"));
        }
    }

    [Fact]
    public async Task TracesMetricsAndLogsAreExportedOverOtlpWhenAnEndpointIsSet()
    {
        // A stand-in OTLP/HTTP collector that keeps what it is sent.
        var received = new ConcurrentDictionary<string, byte[]>();
        var collectorBuilder = WebApplication.CreateSlimBuilder();
        collectorBuilder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var collector = collectorBuilder.Build();
        collector.MapPost("/v1/{signal}", async (string signal, HttpRequest request) =>
        {
            using var body = new MemoryStream();
            await request.Body.CopyToAsync(body);
            received.AddOrUpdate(signal, body.ToArray(), (_, before) => [.. before, .. body.ToArray()]);
            return Results.Ok();
        });
        await collector.StartAsync();
        var collectorAddress = collector.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();

        var (app, address) = await StartAsync(null,
            (ServiceDefaultsExtensions.OtlpEndpointKey, collectorAddress),
            (ServiceDefaultsExtensions.OtlpProtocolKey, "http/protobuf"));
        await using (app)
        {
            var telemetry = app.Services.GetRequiredService<ServiceTelemetry>();
            Assert.Equal("Exo.Defaults", telemetry.Name);
            // A request's work is traced; background work (a root client call, as a heartbeat makes) is not.
            using (telemetry.ActivitySource.StartActivity("handle-request", ActivityKind.Server))
            using (var activity = telemetry.ActivitySource.StartActivity("plan-placement"))
            {
                Assert.True(activity?.Recorded); // someone listens: the tracer provider
            }

            using (var background = telemetry.ActivitySource.StartActivity("send-heartbeat", ActivityKind.Client))
            {
                Assert.False(background?.Recorded ?? false);
            }

            telemetry.Meter.CreateCounter<long>("exo.test.replans").Add(3);
            app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Exo.Test").LogWarning("placement changed for {Model}", "tiny-model");
            Assert.Equal(HttpStatusCode.OK, (await Get(address, "/alive")).Status);
            await app.StopAsync();
        }

        // Disposing the host flushed the providers.
        static string Text(byte[]? bytes) => bytes is null ? "" : Encoding.UTF8.GetString(bytes);
        Assert.Contains("plan-placement", Text(received.GetValueOrDefault("traces")));
        Assert.DoesNotContain("send-heartbeat", Text(received.GetValueOrDefault("traces")));
        Assert.Contains("Exo.Defaults", Text(received.GetValueOrDefault("traces")));
        Assert.Contains("exo.test.replans", Text(received.GetValueOrDefault("metrics")));
        Assert.Contains("placement changed for tiny-model", Text(received.GetValueOrDefault("logs")));
    }

    [Fact]
    public void ABadOtlpSettingIsAClearError()
    {
        var error = Assert.Throws<InvalidOperationException>(() =>
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Configuration[ServiceDefaultsExtensions.OtlpEndpointKey] = "http://127.0.0.1:4318";
            builder.Configuration[ServiceDefaultsExtensions.OtlpProtocolKey] = "carrier-pigeon";
            builder.AddServiceDefaults("Defaults");
        });
        Assert.Equal("OTEL_EXPORTER_OTLP_PROTOCOL is 'carrier-pigeon'; supported are grpc and http/protobuf", error.Message);
    }
}
