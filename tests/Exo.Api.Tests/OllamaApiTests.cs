using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OllamaSharp;
using OllamaSharp.Models;
using OllamaSharp.Models.Chat;
using OllamaSharp.Models.Exceptions;

namespace Exo.Api.Tests;

/// <summary>The Ollama API as OllamaSharp, a real Ollama client, sees it; and its answers to bad requests, over plain HTTP.</summary>
public sealed class OllamaApiTests(ApiFixture fixture) : IClassFixture<ApiFixture>, IDisposable
{
    private const string Question = "Tell me about Elizabeth Bennet.";
    private const string Opening = "It is a truth universally acknowledged";
    private readonly HttpClient _http = new() { BaseAddress = fixture.Api.BaseAddress };
    private readonly OllamaApiClient _ollama = new(new HttpClient { BaseAddress = fixture.Api.BaseAddress }, "exo-tiny");

    public void Dispose()
    {
        _ollama.Dispose();
        _http.Dispose();
    }

    /// <summary>The same request's greedy answer from the OpenAI endpoint: its text and prompt tokens.</summary>
    private async Task<(string Text, int PromptTokens)> OpenAiGreedy(string path, object messagesOrPrompt, int maxTokens)
    {
        object body = path == "/v1/chat/completions"
            ? new { model = "exo-tiny", messages = messagesOrPrompt, temperature = 0, max_tokens = maxTokens }
            : new { model = "exo-tiny", prompt = messagesOrPrompt, temperature = 0, max_tokens = maxTokens };
        using var response = await _http.PostAsJsonAsync(path, body);
        response.EnsureSuccessStatusCode();
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        var choice = json.GetProperty("choices")[0];
        var text = choice.TryGetProperty("message", out var message) ? message.GetProperty("content").GetString()! : choice.GetProperty("text").GetString()!;
        return (text, json.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    private static Task<(string Text, int PromptTokens)> ChatGreedy(OllamaApiTests self, string question, int maxTokens) =>
        self.OpenAiGreedy("/v1/chat/completions", new[] { new { role = "user", content = question } }, maxTokens);

    private static ChatRequest Chat(string question, RequestOptions options, bool stream, string model = "exo-tiny") => new()
    {
        Model = model,
        Messages = [new Message(ChatRole.User, question)],
        Options = options,
        Stream = stream,
    };

    private static async Task<List<T>> All<T>(IAsyncEnumerable<T?> stream) where T : class
    {
        var items = new List<T>();
        await foreach (var item in stream) items.Add(item!);
        return items;
    }

    [Fact]
    public async Task FormatConstrainsTheAnswerToJsonOrASchema()
    {
        var request = Chat(Question, new RequestOptions { NumPredict = 48 }, stream: false);
        request.Format = "json";
        var json = Assert.IsType<ChatDoneResponseStream>(Assert.Single(await All(_ollama.ChatAsync(request))));
        Assert.Equal(JsonValueKind.Object, JsonDocument.Parse(json.Message.Content!).RootElement.ValueKind);

        var schema = JsonDocument.Parse("""{"type": "object", "properties": {"name": {"type": "string", "maxLength": 16}, "age": {"type": "integer"}}, "required": ["name", "age"]}""").RootElement;
        var answer = string.Concat((await All(_ollama.GenerateAsync(new GenerateRequest { Model = "exo-tiny", Prompt = Question, Format = schema, Options = new RequestOptions { NumPredict = 48 } })))
            .Select(c => c.Response));
        var person = JsonDocument.Parse(answer).RootElement;
        Assert.Equal(JsonValueKind.String, person.GetProperty("name").ValueKind);
        Assert.True(person.GetProperty("age").TryGetInt64(out _), answer);
    }

    [Fact]
    public async Task ChatAtTemperatureZeroAnswersWhatTheOpenAiEndpointDoes()
    {
        var (expected, promptTokens) = await ChatGreedy(this, Question, 24);
        var options = new RequestOptions { Temperature = 0, NumPredict = 24 };

        var whole = Assert.Single(await All(_ollama.ChatAsync(Chat(Question, options, stream: false))));
        var done = Assert.IsType<ChatDoneResponseStream>(whole);
        Assert.True(done.Done);
        Assert.Equal(expected, done.Message.Content);
        Assert.Equal(ChatRole.Assistant, done.Message.Role);
        Assert.Equal("length", done.DoneReason);
        Assert.Equal(24, done.EvalCount);
        Assert.Equal(promptTokens, done.PromptEvalCount);
        Assert.Equal("exo-tiny", done.Model);
        Assert.True(done.EvalDuration > 0 && done.PromptEvalDuration > 0, "durations are reported");
        Assert.True(done.TotalDuration >= done.EvalDuration + done.PromptEvalDuration, "the total holds the parts");
        Assert.True(done.CreatedAt > DateTimeOffset.UtcNow.AddMinutes(-5));

        var chunks = await All(_ollama.ChatAsync(Chat(Question, options, stream: true)));
        Assert.True(chunks.Count > 10, "text arrives token by token");
        Assert.All(chunks[..^1], c => Assert.False(c.Done));
        Assert.Equal(expected, string.Concat(chunks.Select(c => c.Message.Content)));
        var last = Assert.IsType<ChatDoneResponseStream>(chunks[^1]);
        Assert.Equal(("length", 24, promptTokens, ""), (last.DoneReason, last.EvalCount, last.PromptEvalCount, last.Message.Content));
    }

    // OllamaSharp marks context obsolete, as Ollama's docs do; apps still send it back, so the API still honors it.
#pragma warning disable CS0618
    [Fact]
    public async Task GenerateTemplatesThePromptAsAUserMessageAndReturnsAUsableContext()
    {
        var (expected, promptTokens) = await ChatGreedy(this, Question, 16);
        var request = new GenerateRequest { Model = "exo-tiny", Prompt = Question, Stream = false, Options = new RequestOptions { Temperature = 0, NumPredict = 16 } };

        var done = Assert.IsType<GenerateDoneResponseStream>(Assert.Single(await All(_ollama.GenerateAsync(request))));
        Assert.Equal(expected, done.Response);
        Assert.Equal((16, promptTokens), (done.EvalCount, done.PromptEvalCount));
        // The context is the prompt's tokens and then the answer's.
        Assert.True(done.Context.Length > promptTokens, "the context holds the prompt and the answer");

        request.Stream = true;
        var chunks = await All(_ollama.GenerateAsync(request));
        Assert.True(chunks.Count > 5);
        Assert.Equal(expected, string.Concat(chunks.Select(c => c.Response)));
        var last = Assert.IsType<GenerateDoneResponseStream>(chunks[^1]);
        Assert.Equal(done.Context, last.Context);

        // The context goes before the next prompt: the model reads both.
        var next = new GenerateRequest { Model = "exo-tiny", Prompt = "And her sister?", Context = done.Context, Stream = false, Options = new RequestOptions { Temperature = 0, NumPredict = 4 } };
        var followUp = Assert.IsType<GenerateDoneResponseStream>(Assert.Single(await All(_ollama.GenerateAsync(next))));
        next.Context = null;
        var alone = Assert.IsType<GenerateDoneResponseStream>(Assert.Single(await All(_ollama.GenerateAsync(next))));
        Assert.Equal(done.Context.Length + alone.PromptEvalCount, followUp.PromptEvalCount);
    }

    [Fact]
    public async Task RawGenerateIsTheTextCompletionAndStreamsNdjson()
    {
        var (expected, promptTokens) = await OpenAiGreedy("/v1/completions", Opening, 12);
        var request = new GenerateRequest { Model = "exo-tiny", Prompt = Opening, Raw = true, Stream = false, Options = new RequestOptions { Temperature = 0, NumPredict = 12 } };
        var done = Assert.IsType<GenerateDoneResponseStream>(Assert.Single(await All(_ollama.GenerateAsync(request))));
        Assert.Equal(expected, done.Response);
        Assert.Equal(promptTokens, done.PromptEvalCount);
        Assert.Null(done.Context);
#pragma warning restore CS0618

        // Streaming is the default: newline-delimited JSON, one object per line, the last one done.
        using var response = await _http.PostAsJsonAsync("/api/generate", new { model = "exo-tiny", prompt = Opening, raw = true, options = new { temperature = 0, num_predict = 12 } });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(expected, string.Concat(lines.Select(l => l.GetProperty("response").GetString())));
        Assert.All(lines[..^1], l => Assert.False(l.GetProperty("done").GetBoolean()));
        Assert.True(lines[^1].GetProperty("done").GetBoolean());
        Assert.Equal("length", lines[^1].GetProperty("done_reason").GetString());
        Assert.Equal(12, lines[^1].GetProperty("eval_count").GetInt32());
        Assert.False(lines[^1].TryGetProperty("context", out _));
    }

    [Fact]
    public async Task StopSequencesCutTheTextBeforeThem()
    {
        var (expected, _) = await ChatGreedy(this, Question, 32);
        var words = expected.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var stop = words[Math.Min(4, words.Length - 1)];
        var options = new RequestOptions { Temperature = 0, NumPredict = 32, Stop = [stop] };

        var done = Assert.IsType<ChatDoneResponseStream>(Assert.Single(await All(_ollama.ChatAsync(Chat(Question, options, stream: false)))));
        Assert.Equal(expected[..expected.IndexOf(stop, StringComparison.Ordinal)], done.Message.Content);
        Assert.Equal("stop", done.DoneReason);
        Assert.True(done.EvalCount < 32);

        var chunks = await All(_ollama.ChatAsync(Chat(Question, options, stream: true)));
        Assert.Equal(done.Message.Content, string.Concat(chunks.Select(c => c.Message.Content)));
        Assert.Equal("stop", Assert.IsType<ChatDoneResponseStream>(chunks[^1]).DoneReason);
    }

    [Fact]
    public async Task SamplingFollowsTheSeedAndTheTaggedNameIsAccepted()
    {
        // Ollama's default temperature (0.8) samples; the same seed gives the same text.
        var options = new RequestOptions { Seed = 1234, NumPredict = 16 };
        var first = Assert.Single(await All(_ollama.ChatAsync(Chat(Question, options, stream: false, model: "exo-tiny:latest"))));
        var second = Assert.Single(await All(_ollama.ChatAsync(Chat(Question, options, stream: false, model: "exo-tiny:latest"))));
        Assert.Equal(first.Message.Content, second.Message.Content);
        Assert.Equal("exo-tiny:latest", first.Model);
        Assert.NotEqual((await ChatGreedy(this, Question, 16)).Text, first.Message.Content);
    }

    [Fact]
    public async Task EmptyRequestsLoadOrUnloadTheModel()
    {
        foreach (var (path, body, reason) in new (string, object, string)[]
        {
            ("/api/chat", new { model = "exo-tiny", messages = Array.Empty<object>() }, "load"),
            ("/api/generate", new { model = "exo-tiny" }, "load"),
            ("/api/generate", new { model = "exo-tiny:latest", keep_alive = 0 }, "unload"),
            ("/api/chat", new { model = "exo-tiny", messages = Array.Empty<object>(), keep_alive = "0s" }, "unload"),
        })
        {
            using var response = await _http.PostAsJsonAsync(path, body);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.True(json.GetProperty("done").GetBoolean());
            Assert.Equal(reason, json.GetProperty("done_reason").GetString());
            Assert.False(json.TryGetProperty("eval_count", out _), "nothing was generated");
        }
    }

    [Fact]
    public async Task TagsListTheServedModelsWithTheirWeights()
    {
        var models = (await _ollama.ListLocalModelsAsync()).ToList();
        Assert.Equal(["exo-tiny:latest", "qwen2-tiny:latest"], models.Select(m => m.Name).Order());
        var tiny = models.Single(m => m.Name == "exo-tiny:latest");
        Assert.Equal(new FileInfo(Path.Combine(ApiProcess.Model("exo-tiny"), "model.safetensors")).Length, tiny.Size);
        Assert.Matches("^[0-9a-f]{64}$", tiny.Digest);
        Assert.NotEqual(tiny.Digest, models.Single(m => m.Name != tiny.Name).Digest);
        Assert.Equal(("safetensors", "llama", "BF16"), (tiny.Details.Format, tiny.Details.Family, tiny.Details.QuantizationLevel));
        Assert.Equal(["llama"], tiny.Details.Families!);
        // A 22 M-parameter model, counted from the weights' headers.
        Assert.Matches(@"^2[0-9]\.[0-9]M$", tiny.Details.ParameterSize);
        Assert.True(tiny.ModifiedAt > new DateTime(2020, 1, 1) && tiny.ModifiedAt <= DateTime.UtcNow.AddMinutes(1));

        var running = (await _ollama.ListRunningModelsAsync()).ToList();
        Assert.Contains(running, m => m.Name == "exo-tiny:latest" && m.Size == tiny.Size);
        // The API runs the models itself here, on the CPU: nothing of them is in GPU memory.
        var ps = JsonDocument.Parse(await _http.GetStringAsync("/api/ps")).RootElement.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("name").GetString() == tiny.Name);
        Assert.Equal(0, ps.GetProperty("size_vram").GetInt64());
        Assert.Equal(1024, ps.GetProperty("context_length").GetInt32());
    }

    [Fact]
    public async Task ShowDescribesTheModel()
    {
        var shown = await _ollama.ShowModelAsync(new ShowModelRequest { Model = "exo-tiny" });
        Assert.Contains("<|im_start|>", shown.Template);
        Assert.Contains("FROM " + Path.GetFullPath(ApiProcess.Model("exo-tiny")), shown.Modelfile);
        Assert.Matches(@"num_ctx\s+1024", shown.Parameters);
        Assert.Contains("\"<|im_end|>\"", shown.Parameters);
        Assert.Equal(("llama", "BF16"), (shown.Details.Family, shown.Details.QuantizationLevel));
        Assert.Equal("llama", shown.Info.Architecture);
        Assert.InRange(shown.Info.ParameterCount ?? 0, 20_000_000, 30_000_000);
        Assert.Equal(1024, ((JsonElement)shown.Info.ExtraInfo!["llama.context_length"]).GetInt32());
        Assert.Equal(["completion"], shown.Capabilities!);

        var tagged = await _ollama.ShowModelAsync(new ShowModelRequest { Model = "exo-tiny:latest" });
        Assert.Equal(shown.Info.ParameterCount, tagged.Info.ParameterCount);
    }

    [Fact]
    public async Task VersionAnswersGetAndHead()
    {
        Assert.Equal(Apis.OllamaApi.Version, await _ollama.GetVersionAsync());
        Assert.Matches(@"^\d+\.\d+\.\d+$", Apis.OllamaApi.Version);

        using var head = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/api/version"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task TheClientSeesBadRequestsAsOllamaErrors()
    {
        var error = await Assert.ThrowsAsync<OllamaException>(() =>
            All(_ollama.ChatAsync(Chat(Question, new RequestOptions { TopP = 0 }, stream: true))));
        Assert.Contains("options.top_p", error.Message);

        var missing = await Assert.ThrowsAsync<HttpRequestException>(() => All(_ollama.ChatAsync(Chat(Question, new RequestOptions(), stream: true, model: "nope"))));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Theory]
    [InlineData("/api/chat", "{ not json", 400, "JSON")]
    [InlineData("/api/chat", "[1, 2]", 400, "JSON object")]
    [InlineData("/api/chat", """{"model": 12, "messages": []}""", 400, "'model' must be a string")]
    [InlineData("/api/chat", """{"messages": []}""", 400, "'model'")]
    [InlineData("/api/chat", """{"model": "nope", "messages": []}""", 404, "model 'nope' not found")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": "hi"}""", 400, "'messages' must be an array")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [7]}""", 400, "'messages[0]' must be an object")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "wizard", "content": "hi"}]}""", 400, "'messages[0].role' must be one of")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": 5}]}""", 400, "'messages[0].content' must be a string")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi", "images": ["aGk="]}]}""", 400, "images are not supported")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "f"}}]}""", 400, "tools are not supported yet")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "format": {"type": "object", "properties": {"a": {"type": "wat"}}}}""", 400, "'format' cannot be enforced")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "format": "xml"}""", 400, "'format' must be")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "think": true}""", 400, "does not support thinking")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}""", 400, "'stream' must be a boolean")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "keep_alive": "soon"}""", 400, "'keep_alive'")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "options": "hot"}""", 400, "'options' must be an object")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "options": {"temperature": "hot"}}""", 400, "'options.temperature' must be a number")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "options": {"temperature": -1}}""", 400, "'options.temperature' is -1")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 0}}""", 400, "'options.num_predict'")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 5000}}""", 400, "options.num_predict is 5000, but the model's context is 1024 tokens")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "options": {"mirostat": 2}}""", 400, "'options.mirostat' is 2")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "options": {"stop": 7}}""", 400, "'options.stop'")]
    [InlineData("/api/chat", """{"model": "exo-tiny", "messages": [{"role": "user", "content": "hi"}], "options": {"num_ctx": "big"}}""", 400, "'options.num_ctx' must be an integer")]
    [InlineData("/api/generate", """{"model": "exo-tiny", "prompt": "hi", "images": ["aGk="]}""", 400, "images are not supported")]
    [InlineData("/api/generate", """{"model": "exo-tiny", "prompt": "hi", "suffix": "end"}""", 400, "does not support insert")]
    [InlineData("/api/generate", """{"model": "exo-tiny", "prompt": "hi", "template": "{{ .Prompt }}"}""", 400, "'template' is not supported")]
    [InlineData("/api/generate", """{"model": "exo-tiny", "prompt": "hi", "raw": "yes"}""", 400, "'raw' must be a boolean")]
    [InlineData("/api/generate", """{"model": "exo-tiny", "prompt": "hi", "context": [-1]}""", 400, "'context' must hold non-negative token ids")]
    [InlineData("/api/generate", """{"model": "exo-tiny", "prompt": "hi", "context": [99999]}""", 400, "the model's vocabulary has 8192")]
    [InlineData("/api/generate", """{"model": "exo-tiny", "prompt": 3}""", 400, "'prompt' must be a string")]
    [InlineData("/api/generate", """{"model": "nope", "prompt": "hi"}""", 404, "model 'nope' not found")]
    [InlineData("/api/show", """{"model": "nope"}""", 404, "model 'nope' not found")]
    [InlineData("/api/show", """{}""", 400, "'model'")]
    public async Task BadRequestsGetOllamaErrors(string path, string body, int status, string message)
    {
        using var response = await _http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        await AssertOllamaError(response, status, message);
    }

    [Fact]
    public async Task APromptTooLongForTheContextIsA400()
    {
        var prompt = string.Join(" ", Enumerable.Repeat("word", 2000));
        using var response = await _http.PostAsJsonAsync("/api/generate", new { model = "exo-tiny", prompt, raw = true });
        await AssertOllamaError(response, 400, "the model's context is 1024 tokens");
    }

    [Theory]
    [InlineData("GET", "/api/nope", 404, "Invalid URL (GET /api/nope)")]
    [InlineData("GET", "/api/chat", 405, "GET is not allowed on /api/chat; use POST")]
    [InlineData("POST", "/api/tags", 405, "use GET")]
    public async Task UnknownRoutesAndMethodsGetOllamaErrors(string method, string path, int status, string message)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method == "POST") request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
        using var response = await _http.SendAsync(request);
        await AssertOllamaError(response, status, message);
    }

    /// <summary>Ollama's error shape: an object with one string, "error".</summary>
    private static async Task AssertOllamaError(HttpResponseMessage response, int status, string message)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == (int)response.StatusCode, $"expected {status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var json = JsonDocument.Parse(text).RootElement;
        var property = Assert.Single(json.EnumerateObject());
        Assert.Equal("error", property.Name);
        Assert.Contains(message, property.Value.GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"5m\"", "load")]
    [InlineData("\"1h30m\"", "load")]
    [InlineData("\"-1\"", "load")]
    [InlineData("-1", "load")]
    [InlineData("300", "load")]
    [InlineData("\"0\"", "unload")]
    [InlineData("0.0", "unload")]
    public async Task KeepAliveTakesDurationsAndSeconds(string keepAlive, string reason)
    {
        using var response = await _http.PostAsync("/api/generate",
            new StringContent($$"""{"model": "exo-tiny", "keep_alive": {{keepAlive}}}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(reason, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("done_reason").GetString());
    }
}
