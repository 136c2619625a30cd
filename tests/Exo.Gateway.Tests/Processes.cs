namespace Exo.Gateway.Tests;

/// <summary>A real service process on a free loopback port: an API replica or a gateway.</summary>
public sealed class Service : IDisposable
{
    private Service(ServiceProcess process)
    {
        Process = process;
        Address = process.WaitUntilListening(TimeSpan.FromSeconds(60));
    }

    public ServiceProcess Process { get; }
    public Uri Address { get; }
    public Uri V1 => new(Address, "/v1");

    private static Dictionary<string, string> Listening(Dictionary<string, string> environment)
    {
        environment["Kestrel__Endpoints__http__Url"] = "http://127.0.0.1:0";
        return environment;
    }

    /// <summary>An API with no planner configured: it runs the shipped model itself.</summary>
    public static Service Api() => new(ServiceProcess.Start("Exo.Api.dll", [], Listening(new() { ["Api__Models__0"] = RepositoryPaths.ShippedModel })));

    /// <summary>A gateway whose API replicas are given as the AppHost's reference gives them, plus its own settings.</summary>
    public static Service Gateway(IEnumerable<Service> replicas, params (string Key, string Value)[] settings)
    {
        // Health changes of the replicas are logged at Information: the failover test waits for them.
        var environment = new Dictionary<string, string> { ["Logging__LogLevel__Yarp.ReverseProxy.Health"] = "Information" };
        var i = 0;
        foreach (var replica in replicas) environment[$"services__api__http__{i++}"] = replica.Address.ToString().TrimEnd('/');
        foreach (var (key, value) in settings) environment[key] = value;
        return new(ServiceProcess.Start("Exo.Gateway.dll", [], Listening(environment)));
    }

    public void Dispose() => Process.Dispose();
}

/// <summary>Two API replicas, shared by the gateway tests (each start loads the models: seconds on this machine).</summary>
public sealed class Replicas : IDisposable
{
    public Service A { get; } = Service.Api();
    public Service B { get; } = Service.Api();

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}
