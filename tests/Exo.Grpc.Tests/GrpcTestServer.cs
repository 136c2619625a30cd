using System.Net;
using System.Security.Cryptography.X509Certificates;
using Exo.Contracts.Health;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Exo.Grpc.Tests;

/// <summary>A real Kestrel server on 127.0.0.1 with a free port, serving the echo and health services.</summary>
public sealed class GrpcTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GrpcTestServer(WebApplication app, string address)
    {
        _app = app;
        Address = address;
    }

    public string Address { get; }

    public EchoServiceImpl Echo => _app.Services.GetRequiredService<EchoServiceImpl>();

    public HealthService Health => _app.Services.GetRequiredService<HealthService>();

    public GrpcServerActivity Activity => _app.Services.GetRequiredService<GrpcServerActivity>();

    public static async Task<GrpcTestServer> StartAsync(Action<GrpcServiceOptions>? configure = null, X509Certificate2? certificate = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.UseGrpcEndpoint(new IPEndPoint(IPAddress.Loopback, 0), certificate);
        builder.Services.AddGrpc(configure);
        builder.Services.AddSingleton<EchoServiceImpl>();
        builder.Services.AddSingleton<HealthService>();
        var app = builder.Build();
        app.MapGrpcService<EchoServiceImpl>();
        app.MapGrpcService<HealthService>();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new GrpcTestServer(app, address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
    }

    public GrpcChannel CreateChannel(GrpcChannelOptions? options = null) => GrpcChannel.ForAddress(Address, options);

    /// <summary>Waits until no call is in progress on the server (calls end asynchronously after a client goes away).</summary>
    public async Task<long> WaitForNoActiveCallsAsync(TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (Activity.ActiveCalls > 0 && DateTime.UtcNow < until)
        {
            await Task.Delay(20);
        }

        return Activity.ActiveCalls;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>One server shared by the tests of a class.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public GrpcTestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await GrpcTestServer.StartAsync(o => o.ResponseCompressionAlgorithm = "gzip");

    public async Task DisposeAsync() => await Server.DisposeAsync();
}
