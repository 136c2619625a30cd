namespace Exo.Api.Tests;

/// <summary>A real API process on a free loopback port, stopped when the tests are done.</summary>
public sealed class ApiProcess : IDisposable
{
    private readonly ServiceProcess _process;

    public ApiProcess(params string[] settings)
    {
        _process = ServiceProcess.Start("Exo.Api.dll", ["--Kestrel:Endpoints:http:Url=http://127.0.0.1:0", .. settings]);
        BaseAddress = _process.WaitUntilListening(TimeSpan.FromSeconds(60));
    }

    public Uri BaseAddress { get; }

    public int ProcessId => _process.Id;

    public Uri V1 => new(BaseAddress, "/v1");

    public static string Model(string name) => name == "exo-tiny" ? RepositoryPaths.ShippedModel : RepositoryPaths.Fixture(name);

    public void Dispose() => _process.Dispose();
}

/// <summary>One API serving the shipped model and a fixture, shared by a test class.</summary>
public sealed class ApiFixture : IDisposable
{
    public ApiProcess Api { get; } = new(
        "--Api:Models:0=" + ApiProcess.Model("exo-tiny"),
        "--Api:Models:1=" + ApiProcess.Model("qwen2-tiny"));

    public void Dispose() => Api.Dispose();
}
