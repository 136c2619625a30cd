using Exo.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Exo.ServiceDefaults.Tests;

/// <summary>
/// A real Kestrel service laid out as every Exo gRPC service is (<see cref="KestrelEndpoints"/>): health on the
/// <c>http</c> endpoint, grpc.health on the h2c <c>grpc</c> one, both on free loopback ports unless the settings say otherwise.
/// </summary>
internal sealed class GrpcServer : IAsyncDisposable
{
    private GrpcServer(WebApplication app, int httpPort, int grpcPort)
    {
        App = app;
        HttpPort = httpPort;
        GrpcPort = grpcPort;
    }

    public WebApplication App { get; }
    public int HttpPort { get; }
    public int GrpcPort { get; }

    public static async Task<GrpcServer> StartAsync(string[]? args = null)
    {
        var (httpPort, grpcPort) = (Ports.Free(), Ports.Free());
        var builder = WebApplication.CreateSlimBuilder(args ?? []);
        builder.AddDefaultEndpoints(httpPort, grpcPort, grpcAddress: "127.0.0.1");
        builder.AddServiceDefaults("Server");
        builder.Services.AddGrpc();
        builder.Services.AddGrpcHealthChecks();
        var app = builder.Build();
        app.MapDefaultEndpoints();
        app.MapGrpcHealthChecksService();
        await app.StartAsync();
        return new GrpcServer(app, httpPort, grpcPort);
    }

    public async ValueTask DisposeAsync() => await App.DisposeAsync();
}
