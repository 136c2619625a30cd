using Grpc.Health.V1;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Http.Resilience;

namespace Exo.ServiceDefaults.Tests;

public sealed class GrpcClientsTests
{
    /// <summary>A client process as the services build one: service defaults, then the gRPC client of <paramref name="service"/>.</summary>
    private static (IHost Host, string ClientName) Client(string service, params (string Key, string Value)[] settings)
    {
        var builder = Host.CreateApplicationBuilder();
        foreach (var (key, value) in settings) builder.Configuration[key] = value;
        builder.AddServiceDefaults("Client");
        var name = builder.Services.AddServiceGrpcClient<Health.HealthClient>(service).Name;
        return (builder.Build(), name);
    }

    [Fact]
    public async Task AClientFindsTheServiceByTheAppHostsEnvironmentVariableAndSpeaksH2c()
    {
        await using var server = await GrpcServer.StartAsync();
        // The real path: the variable an AppHost's WithReference gives a child process; unique, since the environment is shared.
        var service = $"svc{Guid.NewGuid():N}";
        var variable = $"services__{service}__grpc__0";
        Environment.SetEnvironmentVariable(variable, $"http://127.0.0.1:{server.GrpcPort}");
        try
        {
            var (host, _) = Client(service);
            using (host)
            {
                var health = host.Services.GetRequiredService<Health.HealthClient>();
                Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public async Task ALongLivedStreamFollowsTheServerThroughTheDiscoveredAddress()
    {
        await using var server = await GrpcServer.StartAsync();
        var (host, _) = Client("svc", ("services:svc:grpc:0", $"http://127.0.0.1:{server.GrpcPort}"));
        using (host)
        {
            var health = host.Services.GetRequiredService<Health.HealthClient>();
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            using var watch = health.Watch(new HealthCheckRequest(), cancellationToken: stop.Token);
            Assert.True(await watch.ResponseStream.MoveNext(stop.Token));
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, watch.ResponseStream.Current.Status);

            // The server stopping ends the watch with NOT_SERVING rather than leaving the client hanging.
            var stopping = server.App.StopAsync(stop.Token);
            Assert.True(await watch.ResponseStream.MoveNext(stop.Token));
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, watch.ResponseStream.Current.Status);
            await stopping;
        }
    }

    [Fact]
    public void GrpcClientsGoWithoutTheResilienceHandlerOtherHttpClientsHave()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.AddServiceDefaults("Client");
        var grpc = builder.Services.AddServiceGrpcClient<Health.HealthClient>("svc").Name;
        var plain = builder.Services.AddHttpClient("plain").Name;
        using var host = builder.Build();
        var factory = host.Services.GetRequiredService<IHttpMessageHandlerFactory>();

        static List<Type> Chain(HttpMessageHandler handler)
        {
            var types = new List<Type>();
            for (HttpMessageHandler? h = handler; h is not null; h = (h as DelegatingHandler)?.InnerHandler) types.Add(h.GetType());
            return types;
        }

        // The standard handler's 30 s total timeout would cut every watch stream; the plain client shows what it looks like.
        Assert.Contains(typeof(ResilienceHandler), Chain(factory.CreateHandler(plain)));
        var grpcChain = Chain(factory.CreateHandler(grpc));
        Assert.DoesNotContain(typeof(ResilienceHandler), grpcChain);
        Assert.Contains(typeof(SocketsHttpHandler), grpcChain);
    }
}
