using System.Reflection;
using Exo.Grpc.Protocol;
using Exo.Grpc.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Exo.Grpc;

public static class GrpcServiceCollectionExtensions
{
    /// <summary>Registers what <see cref="GrpcEndpointRouteBuilderExtensions.MapGrpcService{TService}"/> needs.</summary>
    public static IServiceCollection AddGrpc(this IServiceCollection services, Action<GrpcServiceOptions>? configure = null)
    {
        services.AddOptions<GrpcServiceOptions>();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.AddRouting();
        services.AddSingleton<GrpcServerActivity>();
        return services;
    }
}

public static class GrpcEndpointRouteBuilderExtensions
{
    private const string UnimplementedMarker = "Exo.Grpc.UnimplementedFallback";

    /// <summary>
    /// Maps every method of <typeparamref name="TService"/> (a subclass of a generated-style service base that carries
    /// <see cref="BindServiceMethodAttribute"/>) to <c>POST /package.Service/Method</c>. The instance comes from DI or
    /// is created once with its constructor dependencies resolved: services live as long as the application.
    /// </summary>
    public static IEndpointConventionBuilder MapGrpcService<TService>(this IEndpointRouteBuilder endpoints)
        where TService : class
    {
        var services = endpoints.ServiceProvider;
        var service = services.GetService<TService>() ?? ActivatorUtilities.CreateInstance<TService>(services);
        return endpoints.MapGrpcService(service);
    }

    /// <summary>Maps an existing service instance.</summary>
    public static IEndpointConventionBuilder MapGrpcService<TService>(this IEndpointRouteBuilder endpoints, TService service)
        where TService : class
    {
        ArgumentNullException.ThrowIfNull(service);
        var bindAttribute = service.GetType().GetCustomAttribute<BindServiceMethodAttribute>(inherit: true)
            ?? throw new InvalidOperationException($"{service.GetType()} does not derive from a service base marked with [BindServiceMethod].");
        var bindMethod = bindAttribute.BindType.GetMethod(
                bindAttribute.BindMethodName,
                BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            ?? throw new InvalidOperationException($"{bindAttribute.BindType}.{bindAttribute.BindMethodName} was not found.");

        var binder = new EndpointServiceBinder(endpoints);
        bindMethod.Invoke(null, [binder, service]);
        MapUnimplementedFallback(endpoints);
        return binder.Conventions;
    }

    /// <summary>Answers calls to unknown services or methods with UNIMPLEMENTED instead of HTTP 404.</summary>
    private static void MapUnimplementedFallback(IEndpointRouteBuilder endpoints)
    {
        if (endpoints.DataSources.SelectMany(d => d.Endpoints).Any(e => e.Metadata.GetMetadata<string>() == UnimplementedMarker))
        {
            return;
        }

        endpoints.MapPost("{unimplementedService}/{unimplementedMethod}", (HttpContext http) =>
            {
                if (!ServerCallHelpers.TryAcceptRequest(http, out _))
                {
                    return Task.CompletedTask;
                }

                var path = http.Request.Path.Value ?? "";
                ServerCallHelpers.WriteTrailersOnly(http, new Status(StatusCode.Unimplemented, $"Method {path} is not implemented."));
                return Task.CompletedTask;
            })
            .WithMetadata(UnimplementedMarker)
            .WithDisplayName("gRPC - unimplemented method");
    }

    private sealed class EndpointServiceBinder(IEndpointRouteBuilder endpoints) : ServiceBinderBase
    {
        private readonly List<IEndpointConventionBuilder> _builders = [];

        public IEndpointConventionBuilder Conventions => new CompositeConventionBuilder(_builders);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse> handler) =>
            Map(method, handler);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse> handler) =>
            Map(method, handler);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse> handler) =>
            Map(method, handler);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse> handler) =>
            Map(method, handler);

        private void Map<TRequest, TResponse>(Method<TRequest, TResponse> method, Delegate handler)
            where TRequest : class
            where TResponse : class
        {
            var services = endpoints.ServiceProvider;
            var callHandler = new ServerCallHandler<TRequest, TResponse>(
                method,
                handler,
                services.GetRequiredService<IOptions<GrpcServiceOptions>>().Value,
                services.GetRequiredService<GrpcServerActivity>(),
                services.GetRequiredService<ILoggerFactory>().CreateLogger("Exo.Grpc.Server"));
            var builder = endpoints.MapPost(method.FullName, callHandler.HandleAsync)
                .WithDisplayName($"gRPC - {method.FullName}")
                .WithMetadata(method);
            _builders.Add(builder);
        }
    }

    private sealed class CompositeConventionBuilder(List<IEndpointConventionBuilder> builders) : IEndpointConventionBuilder
    {
        public void Add(Action<EndpointBuilder> convention)
        {
            foreach (var builder in builders)
            {
                builder.Add(convention);
            }
        }
    }
}
