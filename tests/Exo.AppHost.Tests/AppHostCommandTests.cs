namespace Exo.AppHost.Tests;

/// <summary>The AppHost's options: defaults from the repository and clear refusals of bad input.</summary>
public sealed class AppHostCommandTests
{
    private static AppHostSettings Check(
        string? model = null, int workers = 1, int apiReplicas = 1, int? port = null, int readyTimeout = 10, int? dashboardPort = null, string[]? apiKeys = null) =>
        AppHostCommand.Check(model, workers, apiReplicas, port ?? Ports.Free(), readyTimeout, dataDir: null, isPublic: false, dashboardPort, apiKeys ?? []);

    [Fact]
    public void DefaultsAreTheShippedModelAndTheRepositorysDataFolder()
    {
        var settings = Check(workers: 2, readyTimeout: 180);

        Assert.Equal(RepositoryPaths.ShippedModel, settings.Model);
        Assert.Equal(Path.Combine(RepositoryPaths.Root, ".exo"), settings.DataDir);
        Assert.Equal(TimeSpan.FromSeconds(180), settings.ReadyTimeout);
        Assert.Null(settings.DashboardPort);
    }

    [Theory]
    [InlineData(0, 1, 1, 180, "--workers must be between 1 and 64, not 0")]
    [InlineData(65, 1, 1, 180, "--workers must be between 1 and 64, not 65")]
    [InlineData(1, 0, 1, 180, "--api-replicas must be between 1 and 16, not 0")]
    [InlineData(1, 1, 0, 180, "--port must be between 1 and 65535, not 0")]
    [InlineData(1, 1, 70000, 180, "--port must be between 1 and 65535, not 70000")]
    [InlineData(1, 1, 1, 0, "--ready-timeout must be at least 1 second, not 0")]
    public void BadNumbersAreRefused(int workers, int apiReplicas, int port, int readyTimeout, string message) =>
        Assert.Equal(message, Assert.Throws<AppHostInputException>(() => Check(null, workers, apiReplicas, port == 1 ? null : port, readyTimeout)).Message);

    [Theory]
    [InlineData("auto")]
    [InlineData("1")]
    [InlineData("3")]
    public void ReplicasAreAutoOrAPositiveNumber(string replicas) =>
        Assert.Equal(replicas, AppHostCommand.Check(null, 2, 1, Ports.Free(), 10, null, false, null, [], replicas).Replicas);

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("many")]
    [InlineData("2.5")]
    public void OtherReplicasAreRefused(string replicas) =>
        Assert.Equal($"--replicas must be auto or a positive number of rings, not {replicas}",
            Assert.Throws<AppHostInputException>(() => AppHostCommand.Check(null, 2, 1, Ports.Free(), 10, null, false, null, [], replicas)).Message);

    /// <summary>--model ORG/NAME that cannot be pulled (no hub answers at HF_ENDPOINT, read by nothing else these tests run) is one error, exit 2.</summary>
    [Fact]
    public async Task AHubRepositoryThatCannotBePulledIsAnInputError()
    {
        using var home = new TempDirectory();
        Environment.SetEnvironmentVariable("HF_ENDPOINT", $"http://127.0.0.1:{Ports.Free()}");
        Environment.SetEnvironmentVariable("EXO_HOME", home.Path);
        try
        {
            var ran = false;
            var code = await AppHostCommand.InvokeAsync(["--model", "exo/no-such-model", "--port", $"{Ports.Free()}"], (_, _) =>
            {
                ran = true;
                return Task.FromResult(0);
            }, CancellationToken.None);
            Assert.Equal(AppHostCommand.InputError, code);
            Assert.False(ran);
        }
        finally
        {
            Environment.SetEnvironmentVariable("HF_ENDPOINT", null);
            Environment.SetEnvironmentVariable("EXO_HOME", null);
        }
    }

    [Fact]
    public void ApiKeysAreTrimmedAndAnEmptyOneIsRefused()
    {
        Assert.Equal(["sesame", "other"], Check(apiKeys: [" sesame ", "other"]).ApiKeys);
        Assert.Equal("--api-key must not be empty", Assert.Throws<AppHostInputException>(() => Check(apiKeys: ["sesame", " "])).Message);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void TheClusterSecretIsMadeOnceReadableByItsOwnerOnlyAndKept()
    {
        using var data = new TempDirectory();
        var secret = ClusterSecretFile.LoadOrCreate(data.Path);

        Assert.Matches("^[0-9a-f]{64}$", secret);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(ClusterSecretFile.Location(data.Path)));
        Assert.Equal(secret, ClusterSecretFile.LoadOrCreate(data.Path));
        Assert.NotEqual(secret, ClusterSecretFile.LoadOrCreate(Path.Combine(data.Path, "another-cluster")));

        File.WriteAllText(ClusterSecretFile.Location(data.Path), "\n");
        Assert.StartsWith($"{ClusterSecretFile.Location(data.Path)} is empty", Assert.Throws<AppHostInputException>(() => ClusterSecretFile.LoadOrCreate(data.Path)).Message);
    }

    [Fact]
    public void AFolderWithoutConfigIsNotAModel()
    {
        var message = Assert.Throws<AppHostInputException>(() => Check(model: RepositoryPaths.Root)).Message;

        Assert.Equal($"{RepositoryPaths.Root} is not a model folder: it has no config.json", message);
    }

    [Fact]
    public void PortsInUseAreRefusedNamingTheOption()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Any, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;

        Assert.Equal($"port {port}, where the gateway listens, is in use; pick another with --port", Assert.Throws<AppHostInputException>(() => Check(port: port)).Message);
        Assert.Equal($"port {port}, where the dashboard listens, is in use; pick another with --dashboard-port",
            Assert.Throws<AppHostInputException>(() => Check(dashboardPort: port)).Message);
    }

    [Fact]
    public void PortsWantedTwiceAreRefused()
    {
        var dashboard = Ports.FreePair();

        Assert.Equal($"port {dashboard + 1} is wanted by both the gateway (--port) and the dashboard's OTLP receiver; pick other ports",
            Assert.Throws<AppHostInputException>(() => Check(port: dashboard + 1, dashboardPort: dashboard)).Message);
    }
}
