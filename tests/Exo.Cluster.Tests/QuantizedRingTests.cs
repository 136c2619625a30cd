using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Exo.Contracts;
using Exo.Contracts.V1;
using Grpc.Net.Client;

namespace Exo.Cluster.Tests;

/// <summary>A ring of two workers told by the planner to quantize the weight matrices to q4_0 as they load.</summary>
public sealed class QuantizedCluster : IAsyncLifetime
{
    public Cluster Cluster { get; } = new() { InitialWorkers = 2, Quantize = "q4_0" };

    public Task InitializeAsync() => Cluster.InitializeAsync();

    public Task DisposeAsync() => Cluster.DisposeAsync();
}

/// <summary>
/// <c>Planner:Quantize</c> on real processes: the placement carries the weight type, every stage loads its layers
/// quantized, and the ring's greedy text is the single-process engine's with the same quantization.
/// </summary>
public sealed class QuantizedRingTests(QuantizedCluster quantized) : IClassFixture<QuantizedCluster>
{
    private const string Prompt = "It is a truth universally acknowledged";
    private readonly Cluster _cluster = quantized.Cluster;

    [Fact]
    public async Task TheRingLoadsQ4WeightsAndAnswersAsExoGenerateQuantizedDoes()
    {
        await _cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == 2, TimeSpan.FromSeconds(60));
        using var channel = GrpcChannel.ForAddress(_cluster.Planner);
        var planner = new Contracts.V1.Planner.PlannerClient(new ClusterSecret(_cluster.Secret).Attach(channel));
        var placement = await planner.GetPlacementAsync(new GetPlacementRequest { ModelId = Cluster.Model });
        Assert.Equal("q4_0", placement.WeightType);
        foreach (var worker in _cluster.Workers) await worker.WaitForLogAsync("quantized to q4_0", TimeSpan.FromSeconds(10));

        var (code, output, error) = ServiceProcess.Run("exo.dll", null, "generate", "--model", RepositoryPaths.ShippedModel, "--prompt", Prompt,
            "--max-tokens", "24", "--quantize", "q4_0");
        Assert.True(code == 0, error);
        using var http = new HttpClient { BaseAddress = _cluster.Api };
        var response = await http.PostAsJsonAsync("/v1/completions", new { model = Cluster.Model, prompt = Prompt, max_tokens = 24, temperature = 0 });
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        // The shipped model's q4_0 answer to this prompt is not its f16 one, so a stage that ignored the type would show.
        Assert.Equal(output.TrimEnd('\n'), body.GetProperty("choices")[0].GetProperty("text").GetString());
        var stored = ServiceProcess.Run("exo.dll", null, "generate", "--model", RepositoryPaths.ShippedModel, "--prompt", Prompt, "--max-tokens", "24");
        Assert.True(stored.ExitCode == 0, stored.Error);
        Assert.NotEqual(output, stored.Output);
    }
}
