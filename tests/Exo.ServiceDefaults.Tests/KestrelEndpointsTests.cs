using System.Net;
using Exo.Testing;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Exo.ServiceDefaults.Tests;

public sealed class KestrelEndpointsTests
{
    private static string? Setting(WebApplicationBuilder builder, string endpoint, string field = "Url") =>
        builder.Configuration[$"Kestrel:Endpoints:{endpoint}:{field}"];

    [Fact]
    public void ByDefaultHttpIsOnLoopbackAndGrpcIsH2cOnEveryInterface()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.AddDefaultEndpoints(httpPort: 52426, grpcPort: 52416);

        Assert.Equal("http://127.0.0.1:52426", Setting(builder, KestrelEndpoints.Http));
        Assert.Null(Setting(builder, KestrelEndpoints.Http, "Protocols"));
        Assert.Equal("http://0.0.0.0:52416", Setting(builder, KestrelEndpoints.Grpc));
        Assert.Equal("Http2", Setting(builder, KestrelEndpoints.Grpc, "Protocols"));
        Assert.Equal(new Uri("http://0.0.0.0:52416"), builder.Configuration.Url(KestrelEndpoints.Grpc));
    }

    [Fact]
    public void AServiceWithoutGrpcGetsOnlyTheHttpEndpoint()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.AddDefaultEndpoints(httpPort: 52420);

        Assert.Equal("http://127.0.0.1:52420", Setting(builder, KestrelEndpoints.Http));
        Assert.Empty(builder.Configuration.GetSection($"Kestrel:Endpoints:{KestrelEndpoints.Grpc}").GetChildren());
    }

    [Fact]
    public void EverySettingWinsOverTheDefaultsEvenOneAddedBeforeThem()
    {
        var builder = WebApplication.CreateSlimBuilder(["--Kestrel:Endpoints:grpc:Url=http://10.1.2.3:7000"]);
        builder.Configuration.AddInMemoryCollection([KeyValuePair.Create<string, string?>("Kestrel:Endpoints:http:Url", "http://127.0.0.1:9000")]);
        builder.AddDefaultEndpoints(httpPort: 52426, grpcPort: 52416);

        Assert.Equal("http://127.0.0.1:9000", Setting(builder, KestrelEndpoints.Http));
        Assert.Equal("http://10.1.2.3:7000", Setting(builder, KestrelEndpoints.Grpc));
        // A URL alone keeps the default protocol: the grpc endpoint stays HTTP/2 only.
        Assert.Equal("Http2", Setting(builder, KestrelEndpoints.Grpc, "Protocols"));
    }

    [Fact]
    public async Task KestrelListensWhereTheSettingsSayNotOnTheDefaults()
    {
        var (http, grpc) = (Ports.Free(), Ports.Free());
        // The keys the AppHost sets (Kestrel__Endpoints__NAME__Url), here on the command line.
        await using var server = await GrpcServer.StartAsync([$"--Kestrel:Endpoints:http:Url=http://127.0.0.1:{http}", $"--Kestrel:Endpoints:grpc:Url=http://127.0.0.1:{grpc}"]);

        var addresses = server.App.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
        Assert.Equal(new[] { $"http://127.0.0.1:{grpc}", $"http://127.0.0.1:{http}" }.Order(StringComparer.Ordinal), addresses.Order(StringComparer.Ordinal));
        Assert.DoesNotContain(addresses, a => a.EndsWith($":{server.HttpPort}", StringComparison.Ordinal) || a.EndsWith($":{server.GrpcPort}", StringComparison.Ordinal));

        using var client = new HttpClient();
        using var health = await client.GetAsync($"http://127.0.0.1:{http}/health");
        Assert.Equal((HttpStatusCode.OK, new Version(1, 1)), (health.StatusCode, health.Version));

        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpc}");
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest())).Status);
        // The h2c endpoint is HTTP/2 only, as prior knowledge requires: Kestrel turns HTTP/1.1 away.
        using var refused = await client.GetAsync($"http://127.0.0.1:{grpc}/health");
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("HTTP/2 only endpoint", await refused.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("127.0.0.1:52418")]
    [InlineData("tcp://0.0.0.0:52418")]
    [InlineData("")]
    public void AMalformedUrlNamesTheKeyToFix(string value)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([KeyValuePair.Create<string, string?>("Kestrel:Endpoints:grpc:Url", value)]).Build();
        var error = Assert.Throws<InvalidOperationException>(() => configuration.Url(KestrelEndpoints.Grpc));
        Assert.Equal($"Kestrel:Endpoints:grpc:Url is '{value}', which is not a URL like http://0.0.0.0:52418", error.Message);
    }
}
