using System.Text.RegularExpressions;

namespace Exo.AppHost.Hosting;

/// <summary>A named endpoint a resource listens on. Its port is fixed when the endpoint is declared, so others can be told it.</summary>
public sealed record EndpointAnnotation(string Name, string Host, int Port)
{
    public Uri Url => new($"http://{Host}:{Port}");
}

/// <summary>How a resource's process is started.</summary>
public sealed record ProcessCommand(string FileName, IReadOnlyList<string> Arguments, string WorkingDirectory);

/// <summary>A resource whose references hand out a connection string (<c>ConnectionStrings__name</c>) rather than endpoints.</summary>
public interface IResourceWithConnectionString
{
    string ConnectionString { get; }
}

/// <summary>
/// Something the AppHost runs, as in Aspire: a process with named endpoints, environment settings, the resources it
/// waits for, and a health check that says when the resources waiting for it may start.
/// </summary>
public abstract partial class Resource
{
    private readonly List<EndpointAnnotation> _endpoints = [];
    private readonly List<Action<IDictionary<string, string>>> _environment = [];
    private readonly List<Resource> _waitsFor = [];

    protected Resource(string name)
    {
        // The name becomes part of environment variable names (services__NAME__grpc__0) and of every log prefix.
        if (!ValidName().IsMatch(name)) throw new ArgumentException($"resource name '{name}' must be lower-case letters, digits and '-', starting with a letter", nameof(name));
        Name = name;
    }

    public string Name { get; }

    public IReadOnlyList<EndpointAnnotation> Endpoints => _endpoints;

    public IReadOnlyList<Resource> WaitsFor => _waitsFor;

    /// <summary>True once the resource can serve; null means it is ready as soon as its process has started.</summary>
    public Func<CancellationToken, Task<bool>>? HealthCheck { get; internal set; }

    public abstract ProcessCommand Command { get; }

    public EndpointAnnotation GetEndpoint(string name) =>
        _endpoints.FirstOrDefault(e => e.Name == name) ?? throw new InvalidOperationException($"resource '{Name}' has no endpoint '{name}'");

    /// <summary>The environment the process gets on top of the AppHost's own, resolved when it is asked for: later settings win.</summary>
    public IReadOnlyDictionary<string, string> ResolveEnvironment()
    {
        var environment = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var apply in _environment) apply(environment);
        return environment;
    }

    internal void AddEndpoint(EndpointAnnotation endpoint)
    {
        if (_endpoints.Any(e => e.Name == endpoint.Name)) throw new InvalidOperationException($"resource '{Name}' already has an endpoint '{endpoint.Name}'");
        _endpoints.Add(endpoint);
    }

    internal void AddEnvironment(Action<IDictionary<string, string>> apply) => _environment.Add(apply);

    internal void AddWaitFor(Resource other)
    {
        if (other == this) throw new InvalidOperationException($"resource '{Name}' cannot wait for itself");
        if (!_waitsFor.Contains(other)) _waitsFor.Add(other);
    }

    [GeneratedRegex("^[a-z][a-z0-9-]*$")]
    private static partial Regex ValidName();
}

/// <summary>Any program, started with a command line in a working directory.</summary>
public sealed class ExecutableResource(string name, string fileName, string workingDirectory, IReadOnlyList<string> arguments) : Resource(name)
{
    public override ProcessCommand Command { get; } = new(fileName, arguments, workingDirectory);
}

/// <summary>A .NET project of this repository, run as <c>dotnet Assembly.dll</c> from its own output folder.</summary>
public sealed class ProjectResource(string name, string assemblyPath) : Resource(name)
{
    public string AssemblyPath { get; } = assemblyPath;

    public override ProcessCommand Command => new(DotnetHost, [AssemblyPath], Path.GetDirectoryName(AssemblyPath)!);

    /// <summary>The muxer running the AppHost when it was started as <c>dotnet Exo.AppHost.dll</c>; else the one on PATH.</summary>
    private static string DotnetHost =>
        Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";
}
