using System.Net;
using System.Net.Sockets;

namespace Exo.AppHost.Hosting;

/// <summary>Collects the resources of a distributed application, as Aspire's builder does, and hands out their ports.</summary>
public sealed class DistributedApplicationBuilder
{
    private readonly List<Resource> _resources = [];
    private readonly HashSet<int> _ports = [];

    public IReadOnlyList<Resource> Resources => _resources;

    /// <summary>How long a started resource may take to become healthy before the application gives up.</summary>
    public TimeSpan HealthTimeout { get; set; } = TimeSpan.FromMinutes(2);

    public ResourceBuilder<T> AddResource<T>(T resource) where T : Resource
    {
        if (_resources.Any(r => r.Name == resource.Name)) throw new InvalidOperationException($"there is already a resource named '{resource.Name}'");
        _resources.Add(resource);
        return new ResourceBuilder<T>(this, resource);
    }

    public ResourceBuilder<ProjectResource> AddProject(string name, string assemblyPath) => AddResource(new ProjectResource(name, assemblyPath));

    public ResourceBuilder<ExecutableResource> AddExecutable(string name, string fileName, string workingDirectory, params string[] arguments) =>
        AddResource(new ExecutableResource(name, fileName, workingDirectory, arguments));

    /// <summary>A loopback port that was free a moment ago and that no other resource of this application was given.</summary>
    public int AllocatePort()
    {
        while (true)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var port = ((IPEndPoint)socket.LocalEndPoint!).Port;
            if (_ports.Add(port)) return port;
        }
    }

    internal void ReservePort(int port)
    {
        if (!_ports.Add(port)) throw new InvalidOperationException($"port {port} is given to two endpoints");
    }

    public DistributedApplication Build(ConsoleLog log) => new(_resources, log, HealthTimeout);
}

/// <summary>Fluent configuration of one resource: its endpoints, environment, references and what it waits for.</summary>
public sealed class ResourceBuilder<T>(DistributedApplicationBuilder app, T resource) where T : Resource
{
    public T Resource { get; } = resource;

    public ResourceBuilder<T> WithEnvironment(string name, string value)
    {
        Resource.AddEnvironment(environment => environment[name] = value);
        return this;
    }

    /// <summary>
    /// The ASP.NET endpoint (<c>ASPNETCORE_URLS</c>) named "http", on <paramref name="port"/> or a free one. Health checks
    /// go to 127.0.0.1, which a "localhost" endpoint also serves.
    /// </summary>
    public ResourceBuilder<T> WithHttpEndpoint(int? port = null, string host = "127.0.0.1")
    {
        var endpoint = AddEndpoint("http", host, port);
        return WithEnvironment("ASPNETCORE_URLS", endpoint.Url.ToString().TrimEnd('/'));
    }

    /// <summary>Another endpoint (on a free port unless <paramref name="port"/> is given), told to the process in <paramref name="portVariable"/>.</summary>
    public ResourceBuilder<T> WithEndpoint(string name, string portVariable, int? port = null)
    {
        var endpoint = AddEndpoint(name, "127.0.0.1", port);
        return WithEnvironment(portVariable, endpoint.Port.ToString());
    }

    /// <summary>Healthy when GET <paramref name="path"/> on the "http" endpoint answers 2xx.</summary>
    public ResourceBuilder<T> WithHttpHealthCheck(string path = "/health") =>
        WithHealthCheck(HttpHealthCheck.For(new Uri($"http://127.0.0.1:{Resource.GetEndpoint("http").Port}{path}")));

    /// <summary>Resources waiting for this one start once <paramref name="isHealthy"/> says true.</summary>
    public ResourceBuilder<T> WithHealthCheck(Func<CancellationToken, Task<bool>> isHealthy)
    {
        Resource.HealthCheck = isHealthy;
        return this;
    }

    /// <summary>
    /// Tells this resource where <paramref name="other"/> is, under the names Aspire uses: <c>ConnectionStrings__NAME</c> for a
    /// resource with a connection string, else <c>services__NAME__ENDPOINT__0</c> for each of its endpoints. A missing optional
    /// resource (null) adds nothing.
    /// </summary>
    public ResourceBuilder<T> WithReference<TOther>(ResourceBuilder<TOther>? other) where TOther : Resource
    {
        if (other is null) return this;
        var target = other.Resource;
        Resource.AddEnvironment(environment =>
        {
            if (target is IResourceWithConnectionString withConnectionString)
            {
                environment[$"ConnectionStrings__{target.Name}"] = withConnectionString.ConnectionString;
                return;
            }

            foreach (var endpoint in target.Endpoints) environment[$"services__{target.Name}__{endpoint.Name}__0"] = endpoint.Url.ToString().TrimEnd('/');
        });
        return this;
    }

    /// <summary>This resource starts only once <paramref name="other"/> is healthy. A missing optional resource (null) is not waited for.</summary>
    public ResourceBuilder<T> WaitFor<TOther>(ResourceBuilder<TOther>? other) where TOther : Resource
    {
        if (other is not null) Resource.AddWaitFor(other.Resource);
        return this;
    }

    private EndpointAnnotation AddEndpoint(string name, string host, int? port)
    {
        if (port is { } fixedPort) app.ReservePort(fixedPort);
        var endpoint = new EndpointAnnotation(name, host, port ?? app.AllocatePort());
        Resource.AddEndpoint(endpoint);
        return endpoint;
    }
}

internal static class HttpHealthCheck
{
    // One client for every probe; a probe is short and must not hang on a server that accepted but does not answer.
    private static readonly HttpClient Client = new() { Timeout = TimeSpan.FromSeconds(5) };

    public static Func<CancellationToken, Task<bool>> For(Uri url) => async cancellationToken =>
    {
        try
        {
            using var response = await Client.GetAsync(url, cancellationToken);
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    };
}
