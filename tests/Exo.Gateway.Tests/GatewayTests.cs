using System.ClientModel;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Exo.Gateway.Tests;

/// <summary>The gateway as clients meet it, in front of two real API replicas.</summary>
public sealed class GatewayTests(Replicas replicas) : IClassFixture<Replicas>
{
    private const string Key = "sesame";
    private const string Question = "Tell me about Elizabeth Bennet.";

    /// <summary>A streamed answer that takes seconds: a repetition "penalty" below 1 favours the tokens already seen, so it never ends early.</summary>
    private static readonly object LongAnswer = new { model = "exo-tiny", prompt = "Chapter 1", max_tokens = 200, temperature = 0, repetition_penalty = 0.05, stream = true };

    private static OpenAIClient Sdk(Uri v1, string key) => new(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = v1 });

    private static ChatCompletionOptions Greedy(int maxTokens) => new() { Temperature = 0, MaxOutputTokenCount = maxTokens };

    private static HttpRequestMessage Post(string path, object body, string? key = Key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return request;
    }

    private static async Task<int> InFlight(Service api)
    {
        using var http = new HttpClient { BaseAddress = api.Address };
        var cluster = JsonDocument.Parse(await http.GetStringAsync("/api/cluster")).RootElement;
        return cluster.GetProperty("requests").GetProperty("inFlight").GetInt32();
    }

    [Fact]
    public async Task TheOpenAiSdkGetsTheApisAnswersThroughTheGateway()
    {
        using var gateway = Service.Gateway([replicas.A, replicas.B], ("Gateway__ApiKeys__0", Key));
        var direct = (await Sdk(replicas.A.V1, "unused").GetChatClient("exo-tiny").CompleteChatAsync([new UserChatMessage(Question)], Greedy(24))).Value;

        var client = Sdk(gateway.V1, Key);
        var models = (await client.GetOpenAIModelClient().GetModelsAsync()).Value;
        Assert.Equal("exo-tiny", Assert.Single(models).Id);

        var chat = client.GetChatClient("exo-tiny");
        var whole = (await chat.CompleteChatAsync([new UserChatMessage(Question)], Greedy(24))).Value;
        Assert.Equal(direct.Content[0].Text, whole.Content[0].Text);
        Assert.Equal(direct.Usage.OutputTokenCount, whole.Usage.OutputTokenCount);

        var streamed = new StringBuilder();
        ChatTokenUsage? usage = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage(Question)], Greedy(24)))
        {
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
            usage ??= update.Usage;
        }

        Assert.Equal(whole.Content[0].Text, streamed.ToString());
        Assert.Equal(whole.Usage.OutputTokenCount, usage!.OutputTokenCount);

        // The API's errors pass through as they are.
        var missing = await Assert.ThrowsAsync<ClientResultException>(() => client.GetChatClient("no-such-model").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, missing.Status);
    }

    [Theory]
    [InlineData("GET", "/v1/nope", HttpStatusCode.NotFound, "unknown_url")]
    [InlineData("POST", "/v1/whatever", HttpStatusCode.NotFound, "unknown_url")]
    [InlineData("GET", "/v1/chat/completions", HttpStatusCode.MethodNotAllowed, "method_not_allowed")]
    public async Task UnknownRoutesAndMethodsGetTheApisOpenAiErrors(string method, string path, HttpStatusCode status, string code)
    {
        using var gateway = Service.Gateway([replicas.A, replicas.B], ("Gateway__ApiKeys__0", Key));
        using var http = new HttpClient { BaseAddress = gateway.Address };
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", Key) } };
        if (method == "POST") request.Content = JsonContent.Create(new { model = "exo-tiny" });
        using var response = await http.SendAsync(request);
        Assert.Equal(status, response.StatusCode);
        var error = await Error(response);
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Contains(path, error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task StreamsPassThroughUnbufferedAndAreSpreadOverTheReplicas()
    {
        using var gateway = Service.Gateway([replicas.A, replicas.B]);
        await WaitUntilHealthy(gateway, replicas.A, replicas.B);
        using var http = new HttpClient { BaseAddress = gateway.Address };

        // Two long answers at once: the second goes to the replica with fewer requests in flight.
        using var first = await http.SendAsync(Post("/v1/completions", LongAnswer, key: null), HttpCompletionOption.ResponseHeadersRead);
        using var firstReader = new StreamReader(await first.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: ", await firstReader.ReadLineAsync());
        using var second = await http.SendAsync(Post("/v1/completions", LongAnswer, key: null), HttpCompletionOption.ResponseHeadersRead);
        using var secondReader = new StreamReader(await second.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: ", await secondReader.ReadLineAsync());

        // Both first chunks have reached this client while both replicas are still generating: nothing waits for the end.
        Assert.Equal(1, await InFlight(replicas.A));
        Assert.Equal(1, await InFlight(replicas.B));
        Assert.Equal("text/event-stream", first.Content.Headers.ContentType?.MediaType);

        var rest = await firstReader.ReadToEndAsync();
        Assert.EndsWith("data: [DONE]\n\n", rest);
        Assert.EndsWith("data: [DONE]\n\n", await secondReader.ReadToEndAsync());
    }

    [Fact]
    public async Task TheEdgeRefusesWithOpenAiErrors()
    {
        using var gateway = Service.Gateway([replicas.A, replicas.B], ("Gateway__ApiKeys__0", Key), ("Gateway__MaxRequestBodyBytes", "65536"));
        using var http = new HttpClient { BaseAddress = gateway.Address };

        // Without a key, or with a wrong one: 401, which the SDK reports as such.
        var denied = await Assert.ThrowsAnyAsync<Exception>(() => Sdk(gateway.V1, "wrong").GetChatClient("exo-tiny").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(401, Assert.IsType<ClientResultException>(denied).Status);
        foreach (var path in new[] { "/v1/models", "/api/cluster", "/elsewhere" })
        {
            using var anonymous = await http.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            Assert.Equal("Bearer", anonymous.Headers.WwwAuthenticate.Single().Scheme);
            var refusal = await Error(anonymous);
            Assert.Equal("invalid_api_key", refusal.GetProperty("code").GetString());
            Assert.Contains("Authorization: Bearer KEY", refusal.GetProperty("message").GetString());
        }

        using (var cluster = new HttpRequestMessage(HttpMethod.Get, "/api/cluster") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", Key) } })
        {
            using var allowed = await http.SendAsync(cluster);
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        }

        // Health and the web chat's page stay open: the page asks for the key itself.
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/alive")).StatusCode);
        var page = await http.GetStringAsync("/");
        Assert.Contains("<html", page, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("/v1/chat/completions", page);
        Assert.Contains("id=\"keyInput\"", page);

        // A body over the limit: 413 at once when its length is declared, and when it comes chunked.
        var big = new { model = "exo-tiny", messages = new[] { new { role = "user", content = new string('a', 100_000) } } };
        using (var declared = await http.SendAsync(Post("/v1/chat/completions", big)))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, declared.StatusCode);
            Assert.Equal("request_too_large", (await Error(declared)).GetProperty("code").GetString());
        }

        var chunked = Post("/v1/chat/completions", big);
        chunked.Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(big))));
        chunked.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        chunked.Headers.TransferEncodingChunked = true;
        using (var streamedBody = await http.SendAsync(chunked))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, streamedBody.StatusCode);
        }

        // Within the limit, a body passes (and is buffered for a retry) whichever way it comes.
        var small = Post("/v1/chat/completions", new { model = "exo-tiny", messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 3 });
        small.Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes("""{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}""")));
        small.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        small.Headers.TransferEncodingChunked = true;
        using var passed = await http.SendAsync(small);
        Assert.Equal(HttpStatusCode.OK, passed.StatusCode);
    }

    [Fact]
    public async Task EachClientIsRateLimitedWithRetryAfter()
    {
        using var gateway = Service.Gateway([replicas.A, replicas.B],
            ("Gateway__ApiKeys__0", Key), ("Gateway__ApiKeys__1", "other"), ("Gateway__RateLimitRequests", "3"), ("Gateway__RateLimitWindowSeconds", "60"));
        using var http = new HttpClient { BaseAddress = gateway.Address };
        HttpRequestMessage Models(string key) => new(HttpMethod.Get, "/v1/models") { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", key) } };

        for (var i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(Models(Key))).StatusCode);
        using var limited = await http.SendAsync(Models(Key));
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        var retryAfter = limited.Headers.RetryAfter?.Delta;
        Assert.NotNull(retryAfter);
        Assert.InRange(retryAfter.Value.TotalSeconds, 1, 60);
        var error = await Error(limited);
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());

        // Another key has its own allowance.
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(Models("other"))).StatusCode);
    }

    [Fact]
    public async Task NoReachableReplicaIs503WithRetryAfter()
    {
        using var gateway = Service.Gateway([], ("services__api__http__0", $"http://127.0.0.1:{Ports.Free()}"));
        using var http = new HttpClient { BaseAddress = gateway.Address };
        using var response = await http.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(5), response.Headers.RetryAfter?.Delta);
        var error = await Error(response);
        Assert.Equal("api_unavailable", error.GetProperty("code").GetString());
        Assert.Equal("server_error", error.GetProperty("type").GetString());
    }

    [Fact]
    public async Task AKilledReplicaIsRoutedAround()
    {
        using var doomed = Service.Api();
        using var gateway = Service.Gateway([doomed, replicas.A]);
        await WaitUntilHealthy(gateway, doomed, replicas.A);

        doomed.Process.Dispose();

        // A long answer keeps the live replica busy, so that fewest-requests-in-flight balancing picks the dead one next.
        using var http = new HttpClient { BaseAddress = gateway.Address };
        using var busy = await http.SendAsync(Post("/v1/completions", LongAnswer, key: null), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, busy.StatusCode);
        using var busyReader = new StreamReader(await busy.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: ", await busyReader.ReadLineAsync());

        var client = Sdk(gateway.V1, "unused").GetChatClient("exo-tiny");
        for (var i = 0; i < 3; i++)
        {
            var answer = (await client.CompleteChatAsync([new UserChatMessage(Question)], Greedy(8))).Value;
            Assert.Equal(8, answer.Usage.OutputTokenCount);
        }

        var streamed = new StringBuilder();
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage(Question)], Greedy(8)))
        {
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
        }

        Assert.NotEmpty(streamed.ToString());
        Assert.Contains("on another API replica: " + doomed.Address, gateway.Process.Log);
        Assert.EndsWith("data: [DONE]\n\n", await busyReader.ReadToEndAsync());
    }

    private static async Task<JsonElement> Error(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");

    /// <summary>Until the gateway's first health probes pass it sends requests to any replica ("panic" mode): wait for them.</summary>
    private static async Task WaitUntilHealthy(Service gateway, params Service[] apis)
    {
        var clock = Stopwatch.StartNew();
        while (!apis.All(api => gateway.Process.Log.Contains($"api[{api.Address}]` on cluster `api` is set to 'Healthy'")))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the replicas did not become healthy:\n{gateway.Process.Log}");
            await Task.Delay(100);
        }
    }
}
