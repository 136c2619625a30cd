using System.ClientModel;
using System.Net.Http.Json;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;

namespace Exo.Cluster.Tests;

/// <summary>
/// A cluster whose middle worker runs its layers on the GPU backend (lavapipe in CI) and the others on the CPU, each
/// offering the same memory so that the planner gives every one of them layers.
/// </summary>
public sealed class MixedBackendCluster : IAsyncLifetime
{
    public Cluster Cluster { get; } = new() { Backends = ["cpu", "vulkan", "cpu"], WorkerMemoryMegabytes = 1500 };

    public Task InitializeAsync() => Cluster.InitializeAsync();

    public Task DisposeAsync() => Cluster.DisposeAsync();
}

public sealed class MixedBackendTests(MixedBackendCluster mixed) : IClassFixture<MixedBackendCluster>
{
    [Fact]
    public async Task ARingOfCpuAndGpuWorkersGivesTheSingleProcessGreedyTokens()
    {
        var cluster = mixed.Cluster;
        var placement = await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == 3, TimeSpan.FromSeconds(60));

        // The registry knows the GPU worker as one, with its device.
        using var http = new HttpClient();
        var view = await http.GetFromJsonAsync<JsonElement>(new Uri(cluster.Api, "/api/cluster"));
        var backends = view.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("backend").GetString()!).ToList();
        Assert.Equal(2, backends.Count(b => b == "cpu"));
        Assert.True(backends.Count(b => b.StartsWith("vulkan (", StringComparison.Ordinal)) == 1, string.Join(", ", backends));
        // Its log says where its layers run (read as the process writes it, so give it a moment).
        var gpuWorker = cluster.Workers[1];
        for (var i = 0; i < 50 && !gpuWorker.Log.Contains(" on vulkan ", StringComparison.Ordinal); i++) await Task.Delay(100);
        Assert.Matches(@"Loaded exo-tiny layers \[\d+, \d+\) on vulkan ", gpuWorker.Log);

        var (code, expected, error) = ServiceProcess.Run("exo.dll", "Tell me about Elizabeth.\n", "chat", "--model", RepositoryPaths.ShippedModel,
            "--max-tokens", "24", "--backend", "cpu");
        Assert.True(code == 0, error);
        var client = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(cluster.Api, "/v1") });
        var completion = (await client.GetChatClient(Cluster.Model).CompleteChatAsync([new UserChatMessage("Tell me about Elizabeth.")],
            new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 24 })).Value;
        Assert.Equal(expected.TrimEnd('\n'), completion.Content[0].Text);
        Assert.Equal(3, placement.Stages.Select(s => s.NodeId).Distinct().Count());
    }
}
