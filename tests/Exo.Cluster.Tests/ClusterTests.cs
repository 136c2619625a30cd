using System.ClientModel;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Exo.Contracts;
using Exo.Contracts.V1;
using Exo.Inference.Generation;
using Exo.Inference.Sampling;
using Exo.Text.Constraints;
using Grpc.Core;
using Grpc.Net.Client;
using OpenAI;
using OpenAI.Chat;

namespace Exo.Cluster.Tests;

/// <summary>
/// The product end to end: Redis, registry, planner, three shard workers and the API as real processes, spoken to
/// with the official OpenAI SDK, against what single-process greedy generation (`exo chat`, `exo generate`) prints;
/// and closed to processes without the cluster's join secret.
/// </summary>
public sealed class ClusterTests(Cluster cluster) : IClassFixture<Cluster>
{
    private const string Question = "Tell me about Elizabeth.";
    private const string Prompt = "It is a truth universally acknowledged";
    private readonly OpenAIClient _client = new(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(cluster.Api, "/v1") });

    /// <summary>The greedy answer of `exo chat` (one process, whole model) to one user message.</summary>
    private static string LocalChat(string question, int maxTokens)
    {
        var (code, output, error) = ServiceProcess.Run("exo.dll", question + "\n", "chat", "--model", RepositoryPaths.ShippedModel, "--max-tokens", $"{maxTokens}");
        Assert.True(code == 0, error);
        return output.EndsWith('\n') ? output[..^1] : output;
    }

    private static ChatCompletionOptions Greedy(int maxTokens) => new() { Temperature = 0, MaxOutputTokenCount = maxTokens };

    private async Task<string> ChatAsync(string question, int maxTokens) =>
        (await _client.GetChatClient(Cluster.Model).CompleteChatAsync([new UserChatMessage(question)], Greedy(maxTokens))).Value.Content[0].Text;

    [Fact]
    public async Task ChatOverThreeWorkersEqualsSingleProcessGreedyGeneration()
    {
        var placement = await cluster.WaitForPlacementAsync(p => p.Ready, TimeSpan.FromSeconds(60));
        Assert.True(placement.Stages.Count >= 2, $"a ring of several stages, got {placement}");
        var expected = LocalChat(Question, 32);
        Assert.False(string.IsNullOrWhiteSpace(expected));

        var completion = (await _client.GetChatClient(Cluster.Model).CompleteChatAsync([new UserChatMessage(Question)], Greedy(32))).Value;
        Assert.Equal(expected, completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(32, completion.Usage.OutputTokenCount);

        var text = new StringBuilder();
        var updates = 0;
        ChatTokenUsage? usage = null;
        await foreach (var update in _client.GetChatClient(Cluster.Model).CompleteChatStreamingAsync([new UserChatMessage(Question)], Greedy(32)))
        {
            updates++;
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            usage ??= update.Usage;
        }

        Assert.Equal(expected, text.ToString());
        Assert.True(updates > 10, "tokens arrive one by one");
        Assert.Equal(32, usage!.OutputTokenCount);

        // Finished requests hold no KV cache anywhere: the ends free themselves, the API cancels the middle.
        var clock = Stopwatch.StartNew();
        while (await ActiveRequestsAsync() > 0)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), "a stage still holds a finished request");
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// Eight answers at once on the 3-stage ring: every stage takes at most three of them a step, so they flow round the
    /// ring as micro-batches, and each is still exactly the single-process greedy answer (the CPU kernels are batch-invariant).
    /// </summary>
    [Fact]
    public async Task ConcurrentChatsRunAsMicroBatchesAndEachEqualsSingleProcessGreedyGeneration()
    {
        await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == 3, TimeSpan.FromSeconds(60));
        var expected = LocalChat(Question, 24);
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => ChatAsync(Question, 24)));
        Assert.All(answers, answer => Assert.Equal(expected, answer));
    }

    /// <summary>Ollama's API on the cluster, as OllamaSharp (a real Ollama client) meets it: the model list, and a greedy chat over the ring.</summary>
    [Fact]
    public async Task OllamaSharpListsModelsAndChatsOverTheRing()
    {
        await cluster.WaitForPlacementAsync(p => p.Ready, TimeSpan.FromSeconds(60));
        using var ollama = new OllamaSharp.OllamaApiClient(new HttpClient { BaseAddress = cluster.Api }, "exo-tiny");
        var models = await ollama.ListLocalModelsAsync();
        Assert.Equal("exo-tiny:latest", Assert.Single(models).Name);

        var request = new OllamaSharp.Models.Chat.ChatRequest
        {
            Model = "exo-tiny",
            Messages = [new OllamaSharp.Models.Chat.Message(OllamaSharp.Models.Chat.ChatRole.User, Question)],
            Options = new OllamaSharp.Models.RequestOptions { Temperature = 0, NumPredict = 24 },
        };
        var text = new StringBuilder();
        await foreach (var chunk in ollama.ChatAsync(request)) text.Append(chunk?.Message.Content);
        Assert.Equal(LocalChat(Question, 24), text.ToString());
    }

    /// <summary>A JSON schema and a logit bias travel round the ring to the last stage, which samples as one process does.</summary>
    [Fact]
    public async Task StructuredOutputOverTheRingEqualsSingleProcessConstrainedGeneration()
    {
        await cluster.WaitForPlacementAsync(p => p.Ready, TimeSpan.FromSeconds(60));
        const string schema = """{"type": "object", "properties": {"name": {"type": "string", "maxLength": 24}, "age": {"type": "integer"}}, "required": ["name", "age"]}""";
        var bias = new Dictionary<int, float> { [300] = 4f, [301] = -100f };

        using var local = LocalModel.Load(RepositoryPaths.ShippedModel);
        var output = new StructuredOutput(OutputGrammar.Json(JsonDocument.Parse(schema).RootElement), local.Vocabulary);
        var tokens = local.Generator.Generate(local.EncodeChat([new Text.Templates.ChatMessage("user", Question)]), new SamplingParameters { LogitBias = bias }, 64,
            local.Special.StopTokenIds, output).Where(t => t.Finish != Inference.Generation.FinishReason.Stop).Select(t => t.Token).ToArray();
        var expected = local.Tokenizer.Decode(tokens, skipSpecialTokens: true);
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(expected).RootElement.ValueKind);

        using var http = new HttpClient { BaseAddress = cluster.Api };
        var response = await http.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = Cluster.Model, messages = new[] { new { role = "user", content = Question } }, temperature = 0, max_tokens = 64,
            logit_bias = bias.ToDictionary(b => b.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), b => b.Value),
            response_format = new { type = "json_schema", json_schema = new { name = "person", schema = JsonDocument.Parse(schema).RootElement } },
        });
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        Assert.Equal(expected, body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task TextCompletionEqualsExoGenerate()
    {
        await cluster.WaitForPlacementAsync(p => p.Ready, TimeSpan.FromSeconds(60));
        var (code, output, error) = ServiceProcess.Run("exo.dll", null, "generate", "--model", RepositoryPaths.ShippedModel, "--prompt", Prompt, "--max-tokens", "20");
        Assert.True(code == 0, error);

        using var http = new HttpClient { BaseAddress = cluster.Api };
        var response = await http.PostAsJsonAsync("/v1/completions", new { model = Cluster.Model, prompt = Prompt, max_tokens = 20, temperature = 0 });
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(output.TrimEnd('\n'), body.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task BadRequestsGetOpenAiErrors()
    {
        await cluster.WaitForPlacementAsync(p => p.Ready, TimeSpan.FromSeconds(60));
        var unknown = await Assert.ThrowsAsync<ClientResultException>(() => _client.GetChatClient("no-such-model").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, unknown.Status);
        Assert.Contains("no-such-model", unknown.Message);

        var hot = await Assert.ThrowsAsync<ClientResultException>(() =>
            _client.GetChatClient(Cluster.Model).CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { Temperature = 7 }));
        Assert.Equal(400, hot.Status);

        var tooLong = await Assert.ThrowsAsync<ClientResultException>(() =>
            _client.GetChatClient(Cluster.Model).CompleteChatAsync([new UserChatMessage(string.Concat(Enumerable.Repeat("word ", 3000)))]));
        Assert.Equal(400, tooLong.Status);
        Assert.Contains("context_length_exceeded", tooLong.Message);
        Assert.Matches(@"the prompt has \d+ tokens; the model's context is \d+ tokens", tooLong.Message);

        using var http = new HttpClient { BaseAddress = cluster.Api };
        var broken = await http.PostAsync("/v1/chat/completions", new StringContent("{\"model\": ", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, broken.StatusCode);
        var error = (await broken.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
    }

    /// <summary>Requests open on the live workers' stages, asked of each worker directly.</summary>
    private async Task<uint> ActiveRequestsAsync()
    {
        uint total = 0;
        foreach (var (worker, endpoint) in cluster.WorkerEndpoints.Where(w => !w.Key.HasExited))
        {
            using var channel = GrpcChannel.ForAddress(endpoint);
            var stage = new Shard.ShardClient(new ClusterSecret(cluster.Secret).Attach(channel));
            total += (await stage.StatusAsync(new ShardStatusRequest { ModelId = Cluster.Model })).ActiveRequests;
        }

        return total;
    }

    [Fact]
    public async Task AClientThatHangsUpFreesItsRequestOnEveryStage()
    {
        var placement = await cluster.WaitForPlacementAsync(p => p.Ready, TimeSpan.FromSeconds(60));
        // A browser tab or a killed script closes its connection; .NET's handler would instead read on for up to 2 s to reuse it.
        using var hangingUp = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 });
        var client = new OpenAIClient(new ApiKeyCredential("unused"),
            new OpenAIClientOptions { Endpoint = new Uri(cluster.Api, "/v1"), Transport = new System.ClientModel.Primitives.HttpClientPipelineTransport(hangingUp) });
        var updates = 0;
        await foreach (var update in client.GetChatClient(Cluster.Model).CompleteChatStreamingAsync([new UserChatMessage(Question)], Greedy(1000)))
        {
            if (update.ContentUpdate.Count == 0 || ++updates < 3) continue;
            Assert.True(await ActiveRequestsAsync() >= placement.Stages.Count, "every stage holds the running request");
            break;
        }

        // Leaving the loop closed the response: the API cancels round the ring long before 1000 tokens are done.
        var clock = Stopwatch.StartNew();
        while (await ActiveRequestsAsync() > 0)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"a stage still holds the request {clock.Elapsed.TotalSeconds:0.0} s after the client left");
            await Task.Delay(50);
        }

        Assert.Equal(3, updates);
        Assert.True(placement.Stages.Count >= 2);
    }

    [Fact]
    public async Task WithoutTheJoinSecretNoNodeJoinsNorOpensARingStreamAndTheRefusalSaysWhatToSet()
    {
        var before = await cluster.WaitForPlacementAsync(p => p.Ready, TimeSpan.FromSeconds(60));
        const string Fix = "set Cluster__Secret to the value the cluster was started with";

        // A worker with a wrong secret, and one with none, are refused by the registry: each says what to set and stops
        // with exit code 3, which deploy/'s systemd unit does not restart.
        using var wrong = cluster.StartOutsider("not-" + cluster.Secret);
        using var none = cluster.StartOutsider(null);
        Assert.Equal(3, wrong.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.Equal(3, none.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.Contains($"The registry refused this node: this node's join secret is not the cluster's: {Fix}", wrong.Log);
        Assert.Contains($"The registry refused this node: this node does not have the cluster's join secret: {Fix}", none.Log);
        Assert.Contains(cluster.All, s => s.Log.Contains("Refused /exo.v1.Registry/Register from ", StringComparison.Ordinal));
        var after = await cluster.PlacementAsync();
        Assert.Equal(before.Version, after?.Version);

        // Nor may anything open a ring stream to a stage, ask it anything, or follow the planner's placements.
        var stage = cluster.WorkerEndpoints.First(w => !w.Key.HasExited).Value;
        using var stageChannel = GrpcChannel.ForAddress(stage);
        using var forward = new Shard.ShardClient(stageChannel).Forward();
        var ring = await Assert.ThrowsAsync<RpcException>(() => forward.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal(StatusCode.Unauthenticated, ring.StatusCode);
        Assert.Equal($"this node does not have the cluster's join secret: {Fix} (the AppHost keeps it in the cluster-secret file of its data directory)", ring.Status.Detail);
        var status = await Assert.ThrowsAsync<RpcException>(async () =>
            await new Shard.ShardClient(new ClusterSecret("wrong").Attach(stageChannel)).StatusAsync(new ShardStatusRequest { ModelId = Cluster.Model }));
        Assert.Equal(StatusCode.Unauthenticated, status.StatusCode);
        Assert.Contains("this node's join secret is not the cluster's", status.Status.Detail);

        using var plannerChannel = GrpcChannel.ForAddress(cluster.Planner);
        using var watch = new Contracts.V1.Planner.PlannerClient(plannerChannel).WatchPlacements(new WatchPlacementsRequest());
        Assert.Equal(StatusCode.Unauthenticated, (await Assert.ThrowsAsync<RpcException>(() => watch.ResponseStream.MoveNext(CancellationToken.None))).StatusCode);

        // With the secret, the same stage answers (the API, the planner and every worker send it on each of their calls).
        Assert.Equal(0u, await ActiveRequestsAsync());
    }

    [Fact]
    public async Task WorkersJoiningAndLeavingReplanTheRing()
    {
        var before = await cluster.WaitForPlacementAsync(p => p.Ready, TimeSpan.FromSeconds(60));
        var expected = LocalChat(Question, 12);

        // A machine without the model joins: the layers are spread over one more stage, and it copies its own from a peer.
        var joined = cluster.StartWorker(withoutModels: true);
        joined.WaitUntilListening(TimeSpan.FromSeconds(60));
        var grown = await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == before.Stages.Count + 1, TimeSpan.FromSeconds(90));
        Assert.True(grown.Version > before.Version);
        Assert.Equal(8, grown.Stages.Sum(s => s.LayerEnd - s.LayerStart));
        Assert.Equal(expected, await ChatAsync(Question, 12));
        var fetched = grown.Stages.Single(s => cluster.WorkerOf(s) == joined);
        Assert.Contains($"Fetched exo-tiny layers [{fetched.LayerStart}, {fetched.LayerEnd})", joined.Log);

        // One stops cleanly: it deregisters, and the ring closes over the rest at once.
        var leaving = cluster.Workers.First(w => !w.HasExited && w != joined);
        var clock = Stopwatch.StartNew();
        Assert.True(leaving.Terminate(TimeSpan.FromSeconds(30)), "the worker stops on SIGTERM");
        var shrunk = await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == grown.Stages.Count - 1, TimeSpan.FromSeconds(60));
        Assert.True(shrunk.Version > grown.Version);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"re-planned {clock.Elapsed.TotalSeconds:0.0} s after a clean stop");
        Assert.Equal(expected, await ChatAsync(Question, 12));

        // One vanishes (power cut): its lease expires and it is planned out.
        var vanished = cluster.Workers.First(w => !w.HasExited);
        vanished.Dispose();
        Assert.True(vanished.HasExited);
        var survived = await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == shrunk.Stages.Count - 1, TimeSpan.FromSeconds(60));
        Assert.True(survived.Version > shrunk.Version);
        Assert.Equal(expected, await ChatAsync(Question, 12));
    }
}
