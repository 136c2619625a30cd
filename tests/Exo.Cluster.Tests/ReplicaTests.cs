using System.ClientModel;
using System.Diagnostics;
using System.Text;
using Exo.Contracts;
using Exo.Contracts.V1;
using Grpc.Net.Client;
using OpenAI;
using OpenAI.Chat;
using Xunit.Abstractions;

namespace Exo.Cluster.Tests;

/// <summary>Two workers and the planner's default, <c>auto</c>: the shipped model fits each worker, so each is a ring of its own.</summary>
public sealed class ReplicaCluster : IAsyncLifetime
{
    public Cluster Cluster { get; } = new() { InitialWorkers = 2, Replicas = "auto" };

    public Task InitializeAsync() => Cluster.InitializeAsync();

    public Task DisposeAsync() => Cluster.DisposeAsync();
}

/// <summary>
/// Replicas on real processes: requests spread over both rings, and a worker killed mid-answer costs the client
/// nothing, its answer going on on the other ring, which the re-plan leaves untouched.
/// </summary>
public sealed class ReplicaTests(ReplicaCluster replicas, ITestOutputHelper output) : IClassFixture<ReplicaCluster>
{
    private const string Question = "Tell me about Elizabeth.";
    private const int Tokens = 160;
    private readonly Cluster _cluster = replicas.Cluster;

    private ChatClient Chat() => new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_cluster.Api, "/v1") }).GetChatClient(Cluster.Model);

    /// <summary>Streams the greedy answer; <paramref name="fault"/> runs once the fourth token has arrived.</summary>
    private async Task<string> StreamAsync(Func<Task>? fault = null) => (await TimedStreamAsync(fault)).Text;

    /// <summary>The answer and the longest wait between two of its tokens (the first's, prefill, left out).</summary>
    private async Task<(string Text, TimeSpan LongestGap)> TimedStreamAsync(Func<Task>? fault)
    {
        var text = new StringBuilder();
        var tokens = 0;
        var (clock, last, longest) = (Stopwatch.StartNew(), TimeSpan.Zero, TimeSpan.Zero);
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = Tokens };
        await foreach (var update in Chat().CompleteChatStreamingAsync([new UserChatMessage(Question)], options))
        {
            if (update.ContentUpdate.Count == 0) continue;
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            if (tokens > 0 && clock.Elapsed - last > longest) longest = clock.Elapsed - last;
            last = clock.Elapsed;
            if (++tokens == 4 && fault is not null) await fault();
        }

        return (text.ToString(), longest);
    }

    /// <summary>The requests open on a worker's stage, asked of the worker itself.</summary>
    private async Task<uint> ActiveRequestsAsync(string endpoint)
    {
        using var channel = GrpcChannel.ForAddress(endpoint);
        var stage = new Shard.ShardClient(new ClusterSecret(_cluster.Secret).Attach(channel));
        return (await stage.StatusAsync(new ShardStatusRequest { ModelId = Cluster.Model })).ActiveRequests;
    }

    [Fact]
    public async Task RequestsSpreadOverBothRingsAndAKilledRingsAnswerGoesOnOnTheOther()
    {
        var placement = await _cluster.WaitForPlacementAsync(p => p.Ready && p.Rings.Count == 2, TimeSpan.FromSeconds(60));
        Assert.All(placement.Rings, r => Assert.Equal((0, 8), (Assert.Single(r.Stages).LayerStart, r.Stages[0].LayerEnd)));
        Assert.NotEqual(placement.Rings[0].Version, placement.Rings[1].Version);
        var expected = await StreamAsync();
        Assert.False(string.IsNullOrWhiteSpace(expected));

        // Four concurrent answers: the least loaded ring takes each, so both rings, and both workers, hold some at once.
        var concurrent = Enumerable.Range(0, 4).Select(_ => StreamAsync()).ToList();
        var seenOnRings = new int[2];
        var seenOnWorkers = new uint[2];
        while (!concurrent.All(t => t.IsCompleted) && (seenOnRings.Min() == 0 || seenOnWorkers.Min() == 0))
        {
            if (await _cluster.PlacementAsync() is { Rings.Count: 2 } now)
            {
                for (var i = 0; i < 2; i++)
                {
                    seenOnRings[i] = Math.Max(seenOnRings[i], now.Rings[i].Requests);
                    seenOnWorkers[i] = Math.Max(seenOnWorkers[i], await ActiveRequestsAsync(now.Rings[i].Stages[0].Endpoint));
                }
            }

            await Task.Delay(20);
        }

        output.WriteLine($"most requests open at once: rings {string.Join(", ", seenOnRings)} (the API's count), workers {string.Join(", ", seenOnWorkers)} (their stages')");
        Assert.All(seenOnRings, open => Assert.True(open > 0, "a ring the API sent nothing to"));
        Assert.All(seenOnWorkers, open => Assert.True(open > 0, "a worker that never held a request"));
        Assert.All(await Task.WhenAll(concurrent), answer => Assert.Equal(expected, answer));

        // One answer alone goes to the first ring (ties by ring order); its worker is killed mid-answer.
        var resumes = _cluster.ApiProcess.Log.Split("Resumed a request").Length;
        var (doomed, survivor) = (placement.Rings[0], placement.Rings[1]);
        var (seen, gap) = await TimedStreamAsync(async () =>
        {
            var now = await _cluster.PlacementAsync();
            Assert.Equal([1, 0], now!.Rings.Select(r => r.Requests));
            _cluster.WorkerOf(doomed.Stages[0]).Dispose();
        });
        output.WriteLine($"killed the answering ring's worker: longest wait between tokens {gap.TotalSeconds:0.00} s");
        Assert.Equal(expected, seen);
        Assert.True(_cluster.ApiProcess.Log.Split("Resumed a request").Length > resumes, "the answer moved to the other ring");

        // The re-plan drops the lost ring and keeps the other as it was: same worker, layers and version.
        var after = await _cluster.WaitForPlacementAsync(p => p.Version > placement.Version && p.Rings.Count == 1, TimeSpan.FromSeconds(30));
        Assert.Equal(survivor.Version, after.Rings[0].Version);
        Assert.Equal(survivor.Stages, after.Rings[0].Stages);
        Assert.Equal(expected, await StreamAsync());
    }
}
