using System.ClientModel;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Exo.Inference.Generation;
using Exo.Inference.Sampling;
using TemplateMessage = Exo.Text.Templates.ChatMessage;
using OpenAI;
using OpenAI.Chat;

namespace Exo.Api.Tests;

/// <summary>The API as the official OpenAI .NET SDK sees it.</summary>
public sealed class OpenAiSdkTests(ApiFixture fixture) : IClassFixture<ApiFixture>
{
    private const string Question = "Tell me about Elizabeth Bennet.";
    private readonly OpenAIClient _client = new(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = fixture.Api.V1 });
    private readonly HttpClient _http = new() { BaseAddress = fixture.Api.BaseAddress };

    /// <summary>What single-process greedy generation gives for one user message.</summary>
    private static string Expected(string model, string question, int maxTokens)
    {
        using var local = LocalModel.Load(ApiProcess.Model(model));
        var ids = local.EncodeChat([new TemplateMessage("user", question)]);
        var tokens = local.Generator.Generate(ids, SamplingParameters.Greedy, maxTokens, local.Special.StopTokenIds)
            .Where(t => t.Finish != FinishReason.Stop).Select(t => t.Token).ToArray();
        return local.Tokenizer.Decode(tokens, skipSpecialTokens: true);
    }

    private static ChatCompletionOptions Greedy(int maxTokens) => new() { Temperature = 0, MaxOutputTokenCount = maxTokens };

    [Fact]
    public async Task ListsTheServedModels()
    {
        var models = (await _client.GetOpenAIModelClient().GetModelsAsync()).Value;
        Assert.Equal(["exo-tiny", "qwen2-tiny"], models.Select(m => m.Id).Order());
        Assert.Equal("exo", models.First().OwnedBy);
        var one = (await _client.GetOpenAIModelClient().GetModelAsync("exo-tiny")).Value;
        Assert.Equal("exo-tiny", one.Id);
    }

    [Fact]
    public async Task AModelIsFoundByIdAndAnUnknownOneIs404()
    {
        using var known = await _http.GetAsync("/v1/models/exo-tiny");
        Assert.Equal(HttpStatusCode.OK, known.StatusCode);
        var model = JsonDocument.Parse(await known.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("exo-tiny", model.GetProperty("id").GetString());
        Assert.Equal("model", model.GetProperty("object").GetString());
        Assert.True(model.GetProperty("created").GetInt64() > 0);
        Assert.Equal("exo", model.GetProperty("owned_by").GetString());

        using var unknown = await _http.GetAsync("/v1/models/unknown-model");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        var error = JsonDocument.Parse(await unknown.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("model", error.GetProperty("param").GetString());
        Assert.Contains("unknown-model", error.GetProperty("message").GetString());

        var sdk = await Assert.ThrowsAsync<ClientResultException>(() => _client.GetOpenAIModelClient().GetModelAsync("unknown-model"));
        Assert.Equal(404, sdk.Status);
    }

    [Theory]
    [InlineData("GET", "/v1/nope", 404, "unknown_url", null)]
    [InlineData("POST", "/v1/whatever", 404, "unknown_url", null)]
    [InlineData("GET", "/v1/chat/completions", 405, "method_not_allowed", "POST")]
    [InlineData("DELETE", "/v1/models", 405, "method_not_allowed", "GET")]
    public async Task UnknownRoutesAndMethodsGetOpenAiErrors(string method, string path, int status, string code, string? allow)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method == "POST") request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
        using var response = await _http.SendAsync(request);
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Contains(path, error.GetProperty("message").GetString());
        if (allow is not null) Assert.Equal([allow], response.Content.Headers.Allow);
    }

    [Fact]
    public async Task ChatCompletionEqualsLocalGreedyGeneration()
    {
        var expected = Expected("exo-tiny", Question, 32);
        var completion = (await _client.GetChatClient("exo-tiny").CompleteChatAsync([new UserChatMessage(Question)], Greedy(32))).Value;
        Assert.Equal(expected, completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(32, completion.Usage.OutputTokenCount);
        Assert.True(completion.Usage.InputTokenCount > 5);
        Assert.StartsWith("chatcmpl-", completion.Id);
        Assert.Equal("exo-tiny", completion.Model);
    }

    [Fact]
    public async Task StreamingGivesTheSameTextAndUsage()
    {
        var expected = Expected("exo-tiny", Question, 32);
        var options = Greedy(32); // the SDK asks for usage on streams itself (stream_options.include_usage)
        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        var updates = 0;
        await foreach (var update in _client.GetChatClient("exo-tiny").CompleteChatStreamingAsync([new UserChatMessage(Question)], options))
        {
            updates++;
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal(expected, text.ToString());
        Assert.True(updates > 10, "text arrives token by token");
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.Equal(32, usage!.OutputTokenCount);
    }

    [Fact]
    public async Task StopSequencesCutTheTextBeforeThem()
    {
        var expected = Expected("exo-tiny", Question, 32);
        var words = expected.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var stop = words[Math.Min(4, words.Length - 1)];
        var options = Greedy(32);
        options.StopSequences.Add(stop);

        var completion = (await _client.GetChatClient("exo-tiny").CompleteChatAsync([new UserChatMessage(Question)], options)).Value;
        Assert.Equal(expected[..expected.IndexOf(stop, StringComparison.Ordinal)], completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);

        var streamed = new StringBuilder();
        await foreach (var update in _client.GetChatClient("exo-tiny").CompleteChatStreamingAsync([new UserChatMessage(Question)], options))
        {
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
        }

        Assert.Equal(completion.Content[0].Text, streamed.ToString());
    }

    [Fact]
    public async Task LogprobsDescribeEveryToken()
    {
        var options = Greedy(6);
        options.IncludeLogProbabilities = true;
        options.TopLogProbabilityCount = 3;
        var completion = (await _client.GetChatClient("exo-tiny").CompleteChatAsync([new UserChatMessage(Question)], options)).Value;
        Assert.Equal(6, completion.ContentTokenLogProbabilities.Count);
        foreach (var entry in completion.ContentTokenLogProbabilities)
        {
            Assert.Equal(3, entry.TopLogProbabilities.Count);
            // Greedy: the chosen token is the most likely one.
            Assert.Equal(entry.TopLogProbabilities[0].LogProbability, entry.LogProbability, 4);
            Assert.True(entry.LogProbability <= 0);
        }

        Assert.Equal(completion.Content[0].Text, string.Concat(completion.ContentTokenLogProbabilities.Select(e => e.Token)));
    }

    [Fact]
    public async Task SeededSamplingIsReproducible()
    {
        var options = new ChatCompletionOptions { Temperature = 1.0f, TopP = 0.9f, Seed = 1234, MaxOutputTokenCount = 16 };
        var chat = _client.GetChatClient("exo-tiny");
        var first = (await chat.CompleteChatAsync([new UserChatMessage(Question)], options)).Value.Content[0].Text;
        var second = (await chat.CompleteChatAsync([new UserChatMessage(Question)], options)).Value.Content[0].Text;
        Assert.Equal(first, second);
    }

    [Fact]
    public async Task BadRequestsGetOpenAiErrors()
    {
        var chat = _client.GetChatClient("no-such-model");
        var missing = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, missing.Status);

        var tooHot = await Assert.ThrowsAsync<ClientResultException>(() =>
            _client.GetChatClient("exo-tiny").CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { Temperature = 5 }));
        Assert.Equal(400, tooHot.Status);

        var tooLong = await Assert.ThrowsAsync<ClientResultException>(() =>
            _client.GetChatClient("exo-tiny").CompleteChatAsync([new UserChatMessage(string.Join(" ", Enumerable.Repeat("word", 2000)))]));
        Assert.Equal(400, tooLong.Status);
        Assert.Contains("context_length_exceeded", tooLong.GetRawResponse()!.Content.ToString());
    }

    [Theory]
    [InlineData("""{"model": "exo-tiny", "prompt": [#1000], "max_tokens": 100}""", "prompt",
        "the prompt has 1000 tokens; the model's context is 1024 tokens (max_tokens 100 leaves room for at most 924 prompt tokens)")]
    [InlineData("""{"model": "exo-tiny", "prompt": [#1020]}""", "prompt",
        "the prompt has 1020 tokens; the model's context is 1024 tokens (the default max_tokens 16 leaves room for at most 1008 prompt tokens)")]
    [InlineData("""{"model": "exo-tiny", "prompt": [#1030], "max_tokens": 5}""", "prompt",
        "the prompt has 1030 tokens; the model's context is 1024 tokens (max_tokens 5 leaves room for at most 1019 prompt tokens)")]
    [InlineData("""{"model": "exo-tiny", "prompt": [#10], "max_tokens": 5000}""", "max_tokens",
        "max_tokens is 5000, but the model's context is 1024 tokens and must hold the prompt as well; with this prompt of 10 tokens it can be at most 1014")]
    [InlineData("""{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 1024}""", "max_completion_tokens",
        "max_completion_tokens is 1024, but the model's context is 1024 tokens")]
    [InlineData("""{"model": "exo-tiny", "messages": [{"role": "user", "content": "#word"}]}""", "messages",
        "the model's context is 1024 tokens (at least one token must be left for the completion, so the prompt can have at most 1023)")]
    public async Task APromptTooLongForTheContextIsExplained(string template, string param, string message)
    {
        // '#N' stands for N token ids; '#word' for a text far longer than the context.
        var body = Regex.Replace(template, "#([0-9]+)", m => string.Join(", ", Enumerable.Repeat(100, int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))))
            .Replace("#word", string.Join(" ", Enumerable.Repeat("word", 2000)), StringComparison.Ordinal);
        var (code, error) = await Post(body.Contains("\"messages\"", StringComparison.Ordinal) ? "/v1/chat/completions" : "/v1/completions", body);
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString());
    }

    private Task<(HttpStatusCode Status, JsonElement Error)> Post(string path, string body) =>
        Post(path, new StringContent(body, Encoding.UTF8, "application/json"));

    private async Task<(HttpStatusCode Status, JsonElement Error)> Post(string path, HttpContent body)
    {
        var response = await _http.PostAsync(path, body);
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        return (response.StatusCode, json.TryGetProperty("error", out var error) ? error : json);
    }

    [Theory]
    [InlineData("{ not json", 400, null)]
    [InlineData("[1, 2]", 400, null)]
    [InlineData("""{"model": "exo-tiny"}""", 400, "messages")]
    [InlineData("""{"model": "exo-tiny", "messages": [{"role": "wizard", "content": "hi"}]}""", 400, "messages[0].role")]
    [InlineData("""{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "n": 17}""", 400, "n")]
    [InlineData("""{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}""", 400, "max_tokens")]
    [InlineData("""{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}""", 400, "top_logprobs")]
    [InlineData("""{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "stop": 7}""", 400, "stop")]
    [InlineData("""{"model": "exo-tiny", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}""", 400, "messages[0].content")]
    [InlineData("""{"model": 12, "messages": []}""", 400, "model")]
    public async Task MalformedBodiesAreExplained(string body, int status, string? param)
    {
        var (code, error) = await Post("/v1/chat/completions", body);
        Assert.Equal(status, (int)code);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        if (param is not null) Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Theory]
    [InlineData("/v1/chat/completions", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "caf#"}]}""", "messages[0].content", "0xC3 at byte 67 of the body, followed by 0x28")]
    [InlineData("/v1/completions", """{"model": "exo-tiny", "prompt": "caf#", "max_tokens": 3}""", "prompt", "0xC3 at byte 36")]
    [InlineData("/v1/chat/completions", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi", "na#me": "x"}]}""", "messages[0]", "0xC3 at byte 72")]
    [InlineData("/v1/chat/completions", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "\ud800"}]}""", "messages[0].content", "surrogate")]
    public async Task InvalidUtf8IsA400NamingTheField(string path, string template, string param, string detail)
    {
        // '#' stands for 0xC3 0x28: the lead byte of a two-byte character followed by '(' instead of a continuation byte.
        var body = Encoding.UTF8.GetBytes(template).SelectMany(b => b == (byte)'#' ? new byte[] { 0xC3, 0x28 } : [b]).ToArray();
        var content = new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } };
        var (code, error) = await Post(path, content);
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("invalid_encoding", error.GetProperty("code").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Contains(detail, error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task OversizedBodiesAre413()
    {
        var body = $$"""{"model": "exo-tiny", "messages": [{"role": "user", "content": "{{new string('a', 9 * 1024 * 1024)}}"}]}""";
        var (code, error) = await Post("/v1/chat/completions", body);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, code);
        Assert.Equal("request_too_large", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task TextCompletionsStreamWhatTheyAnswerWhole()
    {
        const string prompt = "It is a truth universally acknowledged";
        var request = new Dictionary<string, object> { ["model"] = "exo-tiny", ["prompt"] = prompt, ["max_tokens"] = 12, ["temperature"] = 0, ["logprobs"] = 2, ["echo"] = true };
        var response = await _http.PostAsJsonAsync("/v1/completions", request);
        response.EnsureSuccessStatusCode();
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("text_completion", json.GetProperty("object").GetString());
        var choice = json.GetProperty("choices")[0];
        var text = choice.GetProperty("text").GetString()!;
        Assert.StartsWith(prompt, text);
        Assert.True(text.Length > prompt.Length);
        var logprobs = choice.GetProperty("logprobs");
        Assert.Equal(json.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), logprobs.GetProperty("tokens").GetArrayLength());

        request["stream"] = true;
        request["stream_options"] = new { include_usage = true };
        using var streamed = await _http.PostAsJsonAsync("/v1/completions", request);
        Assert.Equal("text/event-stream", streamed.Content.Headers.ContentType?.MediaType);
        var events = (await streamed.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement).ToList();
        var whole = new StringBuilder();
        foreach (var chunk in chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0))
        {
            var part = chunk.GetProperty("choices")[0];
            // Each chunk's logprob offsets count from the start of the whole text, echo included.
            if (part.GetProperty("logprobs") is { ValueKind: JsonValueKind.Object } lp && lp.GetProperty("text_offset").GetArrayLength() > 0)
                Assert.Equal(whole.Length, lp.GetProperty("text_offset")[0].GetInt32());
            whole.Append(part.GetProperty("text").GetString());
        }

        Assert.Equal(text, whole.ToString());
        Assert.Equal(choice.GetProperty("finish_reason").GetString(), chunks[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(12, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task AClientThatLeavesFreesItsRequest()
    {
        var body = JsonSerializer.Serialize(new { model = "exo-tiny", messages = new[] { new { role = "user", content = Question } }, max_tokens = 900, stream = true });
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") })
        using (var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            for (var i = 0; i < 3; i++) await reader.ReadLineAsync();
        }

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var cluster = JsonDocument.Parse(await _http.GetStringAsync("/api/cluster")).RootElement;
            var active = cluster.GetProperty("placements").EnumerateArray().Sum(p => p.GetProperty("rings")[0].GetProperty("stages")[0].GetProperty("activeRequests").GetInt32());
            if (active == 0 && cluster.GetProperty("requests").GetProperty("inFlight").GetInt32() == 0) break;
            Assert.True(DateTime.UtcNow < deadline, "the abandoned request still holds its KV cache");
            await Task.Delay(100);
        }
    }
}
