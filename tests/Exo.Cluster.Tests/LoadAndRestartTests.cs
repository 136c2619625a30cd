using System.ClientModel;
using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using Xunit.Abstractions;

namespace Exo.Cluster.Tests;

/// <summary>
/// Load and the loss of the cluster's state, on one cluster behind the gateway (each cluster costs 30–50 s to start):
/// 64 concurrent streams; a worker with almost no KV cache; Redis restarted with and without its data and the planner
/// restarted, each followed by a re-plan that the API and every worker must take up.
/// </summary>
public sealed class LoadAndRestartTests(Cluster cluster, ITestOutputHelper output) : IClassFixture<Cluster>
{
    private const string Question = "Tell me about Elizabeth.";

    [Fact]
    public async Task StreamsRunByMemoryAndPlacementVersionsOnlyGrowThroughRedisAndPlannerRestarts()
    {
        await cluster.WaitForPlacementAsync(p => p.Ready, TimeSpan.FromSeconds(60));
        var (gatewayProcess, gateway) = cluster.StartGateway();
        var chat = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions
        {
            Endpoint = new Uri(gateway, "/v1"),
            // A 429 must reach the test, not be retried away by the SDK.
            RetryPolicy = new ClientRetryPolicy(0),
            NetworkTimeout = TimeSpan.FromMinutes(5),
        }).GetChatClient(Cluster.Model);

        await SixtyFourStreamsAllRunAsync(chat, gatewayProcess);
        await AStageWithATinyKvCacheQueuesOrRefusesWith429Async(gateway);
        await VersionsOnlyGrowAsync(chat);
    }

    private async Task SixtyFourStreamsAllRunAsync(ChatClient chat, ServiceProcess gateway)
    {
        const int Streams = 64;
        await StreamAsync(chat); // compiles what the first requests run, so idle memory is measured warm
        var idle = (Api: RssMegabytes(cluster.ApiProcess), Gateway: RssMegabytes(gateway));
        var peak = idle;
        var mostInFlight = 0;
        using var loaded = new CancellationTokenSource();
        var sampling = Task.Run(async () =>
        {
            using var http = new HttpClient();
            while (!loaded.IsCancellationRequested)
            {
                peak = (Math.Max(peak.Api, RssMegabytes(cluster.ApiProcess)), Math.Max(peak.Gateway, RssMegabytes(gateway)));
                var view = await http.GetFromJsonAsync<JsonElement>(new Uri(cluster.Api, "/api/cluster"));
                mostInFlight = Math.Max(mostInFlight, view.GetProperty("requests").GetProperty("inFlight").GetInt32());
                await Task.Delay(50);
            }
        });

        var clock = Stopwatch.StartNew();
        var streams = await Task.WhenAll(Enumerable.Range(0, Streams).Select(_ => StreamAsync(chat)));
        var elapsed = clock.Elapsed;
        await loaded.CancelAsync();
        await sampling;

        Assert.All(streams, s => Assert.True(s.Tokens > 0 && s.Finish is ChatFinishReason.Length or ChatFinishReason.Stop, $"a stream ended with {s}"));
        var firstTokens = streams.Select(s => s.FirstToken.TotalSeconds).Order().ToArray();
        output.WriteLine($"{Streams} concurrent streams of up to 24 tokens through the gateway: all done in {elapsed.TotalSeconds:0.0} s; "
            + $"time to first token p50 {firstTokens[Streams / 2]:0.00} s, p95 {firstTokens[(int)Math.Ceiling(Streams * 0.95) - 1]:0.00} s, "
            + $"max {firstTokens[^1]:0.00} s; at most {mostInFlight} generations running at once");
        output.WriteLine($"RSS idle → under {Streams} streams: API {idle.Api} → {peak.Api} MB, gateway {idle.Gateway} → {peak.Gateway} MB");
        // The old constant admitted 16; the KV cache of three 256 MB stages holds every one of these.
        Assert.True(mostInFlight > 16, $"at most {mostInFlight} generations ran at once");
    }

    private async Task AStageWithATinyKvCacheQueuesOrRefusesWith429Async(Uri gateway)
    {
        const int Burst = 80;
        var before = await cluster.WaitForPlacementAsync(p => p.Ready, TimeSpan.FromSeconds(60));
        var tiny = cluster.StartWorker(kvCacheMegabytes: 1);
        tiny.WaitUntilListening(TimeSpan.FromSeconds(60));
        var withTiny = await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == before.Stages.Count + 1, TimeSpan.FromSeconds(90));
        // A second API replica shares the ring: what it admits, the first learns of only from the stages' next report.
        var replica = cluster.StartApi().WaitUntilListening(TimeSpan.FromSeconds(90));
        await cluster.WaitForPlacementAsync(p => p.Ready && p.Version == withTiny.Version, TimeSpan.FromSeconds(60), replica);
        using var channel = global::Grpc.Net.Client.GrpcChannel.ForAddress(cluster.WorkerEndpoints[tiny]);
        var capacity = (int)(await new Contracts.V1.Shard.ShardClient(new Contracts.ClusterSecret(cluster.Secret).Attach(channel)).StatusAsync(new Contracts.V1.ShardStatusRequest { ModelId = Cluster.Model })).KvCacheCapacityTokens;

        // A long answer on the replica takes all but a few positions of the tiny stage; a repetition "penalty" below 1
        // keeps it from ending early. It is read as it comes, or the replica would stop generating it.
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(5) };
        int[] prompt = [100, 200, 300];
        var hold = Math.Min(capacity, 1000) - prompt.Length - 8;
        using var holding = new HttpRequestMessage(HttpMethod.Post, new Uri(replica, "/v1/completions"))
        {
            Content = JsonContent.Create(new { model = Cluster.Model, prompt, max_tokens = hold, temperature = 0, repetition_penalty = 0.05, stream = true }),
        };
        using var holder = await http.SendAsync(holding, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, holder.StatusCode);
        var holderText = new StreamReader(await holder.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: ", await holderText.ReadLineAsync());
        var held = Stopwatch.StartNew();
        var holderDone = Task.Run(async () => (Text: await holderText.ReadToEndAsync(), Held: held.Elapsed));

        var answers = await Task.WhenAll(Enumerable.Range(0, Burst).Select(async _ =>
        {
            var clock = Stopwatch.StartNew();
            using var response = await http.PostAsJsonAsync(new Uri(gateway, "/v1/chat/completions"),
                new { model = Cluster.Model, messages = new[] { new { role = "user", content = Question } }, max_tokens = 16, temperature = 0 });
            return (response.StatusCode, RetryAfter: response.Headers.RetryAfter?.Delta, Waited: clock.Elapsed, Body: await response.Content.ReadAsStringAsync());
        }));
        var (holderRest, holderTime) = await holderDone;
        Assert.EndsWith("data: [DONE]", holderRest.TrimEnd());
        var holderSeconds = holderTime.TotalSeconds;

        var refused = answers.Where(a => a.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        var served = answers.Where(a => a.StatusCode == HttpStatusCode.OK).ToList();
        var turnedAway = cluster.ApiProcess.Log.Split("had no room for a request").Length - 1;
        output.WriteLine($"A stage with 1 MB of KV cache ({capacity} positions), {hold + prompt.Length} of them held for {holderSeconds:0.0} s by another replica; "
            + $"{Burst} requests at once: {served.Count} answered after waiting up to {served.Select(a => a.Waited.TotalSeconds).DefaultIfEmpty().Max():0.0} s, "
            + $"{refused.Count} refused with 429; the API sent {turnedAway} request(s) the stage turned away back to its queue");
        Assert.All(answers, a => Assert.True(a.StatusCode is HttpStatusCode.OK or HttpStatusCode.TooManyRequests, $"{(int)a.StatusCode}: {a.Body}"));
        Assert.All(refused, a => Assert.Equal(TimeSpan.FromSeconds(1), a.RetryAfter));
        Assert.NotEmpty(refused);
        Assert.True(served.Count >= 64, $"only {served.Count} waited for room");

        Assert.True(tiny.Terminate(TimeSpan.FromSeconds(30)), "the tiny worker stops on SIGTERM");
        await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == before.Stages.Count, TimeSpan.FromSeconds(90));
    }

    private async Task VersionsOnlyGrowAsync(ChatClient chat)
    {
        var placement = await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == 3, TimeSpan.FromSeconds(90));
        var expected = await AnswerAsync(chat);

        // The API and the workers take up only placements newer than theirs: each re-plan must come with a higher version.
        async Task<PlacementInfo> ReplannedAsync(PlacementInfo after, int stages, string fault)
        {
            var clock = Stopwatch.StartNew();
            var next = await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == stages && p.Version > after.Version, TimeSpan.FromSeconds(90));
            Assert.Equal(expected, await AnswerAsync(chat));
            output.WriteLine($"{fault}: placement v{after.Version} → v{next.Version} over {stages} workers, serving again after {clock.Elapsed.TotalSeconds:0.0} s");
            return next;
        }

        await cluster.RestartRedisAsync(keepData: true);
        Assert.True(LiveWorkers().First().Terminate(TimeSpan.FromSeconds(30)), "a worker stops on SIGTERM");
        placement = await ReplannedAsync(placement, 2, "Redis restarted with its data, then a worker stopped");

        await cluster.RestartPlannerAsync();
        cluster.StartWorker().WaitUntilListening(TimeSpan.FromSeconds(60));
        placement = await ReplannedAsync(placement, 3, "the planner restarted, then a worker joined");

        // Redis comes back empty under a running planner; a worker then vanishes (kill -9), once every worker has
        // registered again (a node the registry no longer knows cannot expire).
        await RestartRedisEmptyAsync();
        LiveWorkers().First().Dispose();
        placement = await ReplannedAsync(placement, 2, "Redis restarted empty, then a worker was killed");

        // Both forget: Redis empty and the planner restarted, knowing no version at all.
        await RestartRedisEmptyAsync();
        await cluster.RestartPlannerAsync();
        cluster.StartWorker().WaitUntilListening(TimeSpan.FromSeconds(60));
        await ReplannedAsync(placement, 3, "Redis restarted empty and the planner restarted, then a worker joined");
    }

    private IEnumerable<ServiceProcess> LiveWorkers() => cluster.Workers.Where(w => !w.HasExited);

    /// <summary>Restarts Redis empty and waits until every live worker has registered again.</summary>
    private async Task RestartRedisEmptyAsync()
    {
        var registered = LiveWorkers().ToDictionary(w => w, Registrations);
        await cluster.RestartRedisAsync(keepData: false);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (registered.Any(r => Registrations(r.Key) <= r.Value))
        {
            Assert.True(DateTime.UtcNow < deadline, "a worker did not register again within 30 s of Redis coming back empty");
            await Task.Delay(100);
        }
    }

    private static int Registrations(ServiceProcess worker) => worker.Log.Split("Registered ").Length - 1;

    private static async Task<string> AnswerAsync(ChatClient chat) =>
        (await chat.CompleteChatAsync([new UserChatMessage(Question)], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12 })).Value.Content[0].Text;

    private sealed record StreamResult(TimeSpan FirstToken, int Tokens, ChatFinishReason? Finish);

    private static async Task<StreamResult> StreamAsync(ChatClient chat)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan? first = null;
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage(Question)], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 24 }))
        {
            if (update.ContentUpdate.Count > 0) first ??= clock.Elapsed;
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        return new StreamResult(first ?? clock.Elapsed, usage?.OutputTokenCount ?? 0, finish);
    }

    /// <summary>The process's resident memory, from /proc.</summary>
    private static long RssMegabytes(ServiceProcess process) =>
        long.Parse(File.ReadLines($"/proc/{process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
}
