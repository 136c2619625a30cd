namespace Exo.Gateway.Tests;

/// <summary>A real gateway process on a free loopback port, stopped when the tests are done.</summary>
public sealed class GatewayProcess : IDisposable
{
    private readonly ServiceProcess _process;

    public GatewayProcess(params string[] settings)
    {
        _process = ServiceProcess.Start("Exo.Gateway.dll", ["--urls", "http://127.0.0.1:0", .. settings]);
        BaseAddress = _process.WaitUntilListening(TimeSpan.FromSeconds(60));
    }

    public Uri BaseAddress { get; }

    public Uri V1 => new(BaseAddress, "/v1");

    public static string Model(string name) => name == "exo-tiny" ? RepositoryPaths.ShippedModel : RepositoryPaths.Fixture(name);

    public void Dispose() => _process.Dispose();
}

/// <summary>One gateway serving the shipped model and a fixture, shared by a test class.</summary>
public sealed class GatewayFixture : IDisposable
{
    public GatewayProcess Gateway { get; } = new(
        "--Gateway:Models:0=" + GatewayProcess.Model("exo-tiny"),
        "--Gateway:Models:1=" + GatewayProcess.Model("qwen2-tiny"),
        "--Gateway:MaxConcurrentRequests=4");

    public void Dispose() => Gateway.Dispose();
}
