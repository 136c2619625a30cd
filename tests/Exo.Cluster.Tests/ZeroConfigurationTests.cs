using System.ClientModel;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Exo.Hub;
using Exo.Inference;
using Exo.Inference.Model;
using OpenAI;
using OpenAI.Chat;
using Xunit.Abstractions;

namespace Exo.Cluster.Tests;

/// <summary>
/// "Run exo on each machine and they form a cluster", end to end in a network namespace of the test's own (real mDNS
/// on its loopback, nothing on the machine's interfaces): a registry that advertises itself, a planner, one worker with
/// the model and the API; then a fresh worker with an empty models directory and no cluster address finds the cluster,
/// copies its layers from the first, and the ring answers exactly as the one worker did.
/// </summary>
public sealed partial class ZeroConfigurationTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string ClusterName = "zeroconf";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private readonly TempDirectory _data = new();
    private readonly List<ServiceProcess> _processes = [];
    private readonly string _secret = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
    private NetworkNamespace _space = null!;

    public async Task InitializeAsync() => _space = await NetworkNamespace.CreateAsync();

    public async Task DisposeAsync()
    {
        foreach (var process in Enumerable.Reverse(_processes)) process.Dispose();
        await _space.DisposeAsync();
        _data.Dispose();
    }

    [Fact]
    public async Task AFreshWorkerFindsTheClusterCopiesItsLayersFromAPeerAndTheRingAnswersAsBefore()
    {
        var (_, inside) = await _space.ConnectAsync();
        int registryPort = Ports.Free(), plannerPort = Ports.Free(), apiPort = Ports.Free();
        string registry = $"http://{inside}:{registryPort}", planner = $"http://{inside}:{plannerPort}";
        var api = new Uri($"http://{inside}:{apiPort}");

        Start("Exo.Registry.dll", [$"--Kestrel:Endpoints:http:Url=http://127.0.0.1:{Ports.Free()}", $"--Kestrel:Endpoints:grpc:Url=http://0.0.0.0:{registryPort}"], new()
        {
            ["Registry__Advertise"] = "true",
            ["Cluster__Name"] = ClusterName,
            ["Registry__AdvertisedRegistry"] = registry,
            ["Registry__AdvertisedPlanner"] = planner,
        });
        Start("Exo.Planner.dll", [$"--Kestrel:Endpoints:http:Url=http://127.0.0.1:{Ports.Free()}", $"--Kestrel:Endpoints:grpc:Url=http://0.0.0.0:{plannerPort}"], new()
        {
            ["services__registry__grpc__0"] = registry,
            ["Planner__Models__0"] = RepositoryPaths.ShippedModel,
            // One ring over both workers, so the fresh one is given a part of the model to copy, not all of it.
            ["Planner__Replicas"] = "1",
        });
        Start("Exo.ShardWorker.dll", ServiceEndpoints.Free().Args, Worker("holder", Path.GetDirectoryName(RepositoryPaths.ShippedModel)!, registry, planner));
        Start("Exo.Api.dll", [$"--Kestrel:Endpoints:http:Url=http://0.0.0.0:{apiPort}"], new()
        {
            ["services__registry__grpc__0"] = registry,
            ["services__planner__grpc__0"] = planner,
            ["Api__Models__0"] = RepositoryPaths.ShippedModel,
        });

        await WaitForPlacementAsync(api, p => p.Ready && p.Stages.Count == 1);
        var chat = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(api, "/v1") }).GetChatClient(Cluster.Model);
        var greedy = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 24 };
        var alone = (await chat.CompleteChatAsync([new UserChatMessage("Tell me about Elizabeth.")], greedy)).Value.Content[0].Text;
        Assert.False(string.IsNullOrWhiteSpace(alone));

        // A new machine: nothing on disk, no address; only the cluster's name (two could share a network) and its secret.
        var endpoints = ServiceEndpoints.Free();
        var fresh = Start("Exo.ShardWorker.dll", [.. endpoints.Args, "--cluster", ClusterName],
            Worker("fresh", Directory.CreateDirectory(Path.Combine(_data.Path, "fresh-models")).FullName, registry: null, planner: null));
        await fresh.WaitForLogAsync($"Found Exo cluster {ClusterName} on the local network: registry {registry}", Patience);
        var ring = await WaitForPlacementAsync(api, p => p.Ready && p.Stages.Count == 2);

        var mine = ring.Stages.Single(s => s.Endpoint.TrimEnd('/') == endpoints.Grpc);
        var fetched = FetchedLine().Match(fresh.Log);
        Assert.True(fetched.Success, fresh.Log);
        Assert.Equal($"[{mine.LayerStart}, {mine.LayerEnd})", fetched.Groups["layers"].Value);
        var megabytes = double.Parse(fetched.Groups["mb"].Value, CultureInfo.InvariantCulture);
        var weights = Path.Combine(RepositoryPaths.ShippedModel, "model.safetensors");
        var config = ModelConfig.Load(RepositoryPaths.ShippedModel);
        var layers = new LayerRange(mine.LayerStart, mine.LayerEnd);
        var needed = SafetensorsHeader.TryRead(weights)!.Tensors.Where(t => StageWeights.Reads(t.Name, layers, config.LayerCount, config.TieWordEmbeddings)).Sum(t => t.Length) / 1e6;
        output.WriteLine($"the fresh worker fetched layers {layers}: {megabytes:0.0} MB ({needed:0.0} MB of its tensors) of the model's {new FileInfo(weights).Length / 1e6:0.0} MB of weights");
        // Its layers' tensors (and its end of the model's), plus config and tokenizer files (0.6 MB): not the whole file.
        Assert.InRange(megabytes, needed, needed + 1.0);

        var split = (await chat.CompleteChatAsync([new UserChatMessage("Tell me about Elizabeth.")], greedy)).Value.Content[0].Text;
        Assert.Equal(alone, split);
    }

    [GeneratedRegex(@"Fetched exo-tiny layers (?<layers>\[\d+, \d+\)): (?<mb>[0-9.]+) MB")]
    private static partial Regex FetchedLine();

    private ServiceProcess Start(string assembly, string[] args, Dictionary<string, string> environment)
    {
        environment["Cluster__Secret"] = _secret;
        // mDNS on the namespace's loopback, not on the veth pair to this test process.
        environment["Discovery__Interface"] = "lo";
        environment["Logging__Console__FormatterName"] = "simple";
        environment["Logging__Console__FormatterOptions__SingleLine"] = "true";
        var process = _space.Start(assembly, args, environment);
        _processes.Add(process);
        return process;
    }

    /// <summary>A worker offering the same memory as the other, so that each gets a share of the layers.</summary>
    private Dictionary<string, string> Worker(string name, string modelsDirectory, string? registry, string? planner)
    {
        var environment = new Dictionary<string, string>
        {
            ["ShardWorker__DataDir"] = Path.Combine(_data.Path, name),
            ["ShardWorker__ModelsDir"] = modelsDirectory,
            ["ShardWorker__Backend"] = "cpu",
            ["ShardWorker__MemoryMegabytes"] = "2048",
            ["ShardWorker__KvCacheMegabytes"] = "64",
        };
        if (registry is not null) environment["services__registry__grpc__0"] = registry;
        if (planner is not null) environment["services__planner__grpc__0"] = planner;
        return environment;
    }

    private Task<PlacementInfo> WaitForPlacementAsync(Uri api, Func<PlacementInfo, bool> condition) =>
        Cluster.WaitForPlacementAt(api, condition, Patience, _processes);
}
