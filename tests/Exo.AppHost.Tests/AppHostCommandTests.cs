namespace Exo.AppHost.Tests;

/// <summary>The AppHost's options: defaults from the repository and clear refusals of bad input.</summary>
public sealed class AppHostCommandTests
{
    [Fact]
    public void DefaultsAreTheShippedModelAndTheRepositorysDataFolder()
    {
        var settings = AppHostCommand.Check(model: null, workers: 2, port: Ports.Free(), readyTimeoutSeconds: 180, dataDir: null);

        Assert.Equal(RepositoryPaths.ShippedModel, settings.Model);
        Assert.Equal(Path.Combine(RepositoryPaths.Root, ".exo"), settings.DataDir);
        Assert.Equal(TimeSpan.FromSeconds(180), settings.ReadyTimeout);
    }

    [Theory]
    [InlineData(0, 1, 180, "--workers must be between 1 and 64, not 0")]
    [InlineData(65, 1, 180, "--workers must be between 1 and 64, not 65")]
    [InlineData(1, 0, 180, "--port must be between 1 and 65535, not 0")]
    [InlineData(1, 70000, 180, "--port must be between 1 and 65535, not 70000")]
    [InlineData(1, 1, 0, "--ready-timeout must be at least 1 second, not 0")]
    public void BadNumbersAreRefused(int workers, int port, int readyTimeout, string message) =>
        Assert.Equal(message, Assert.Throws<AppHostInputException>(() => AppHostCommand.Check(null, workers, port == 1 ? Ports.Free() : port, readyTimeout, null)).Message);

    [Fact]
    public void AFolderWithoutConfigIsNotAModel()
    {
        var message = Assert.Throws<AppHostInputException>(() => AppHostCommand.Check(RepositoryPaths.Root, 1, Ports.Free(), 10, null)).Message;

        Assert.Equal($"{RepositoryPaths.Root} is not a model folder: it has no config.json", message);
    }

    [Fact]
    public void APortInUseIsRefused()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Any, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;

        var message = Assert.Throws<AppHostInputException>(() => AppHostCommand.Check(null, 1, port, 10, null)).Message;

        Assert.Equal($"port {port} is in use; pick another with --port", message);
    }

    [Fact]
    public void EveryServiceWasBuiltWithTheAppHost()
    {
        Assert.Equal([ServiceProjects.Gateway, ServiceProjects.Planner, ServiceProjects.Registry, ServiceProjects.ShardWorker], ServiceProjects.All.Keys.Order());
        Assert.All(ServiceProjects.All.Keys, project => Assert.True(File.Exists(ServiceProjects.PathOf(project)), project));
        // Run from their own output folders: nothing of theirs is copied beside the AppHost.
        Assert.All(ServiceProjects.All.Values, path => Assert.NotEqual(Path.GetDirectoryName(typeof(ServiceProjects).Assembly.Location), Path.GetDirectoryName(path)));
    }
}
