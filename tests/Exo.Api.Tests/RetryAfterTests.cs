using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Exo.Api.Tests;

/// <summary>The refusals a client should retry tell it when: no KV cache free and a full queue (429), and a model with no ready ring (503).</summary>
public sealed class RetryAfterTests
{
    private static readonly string Model = "--Api:Models:0=" + ApiProcess.Model("exo-tiny");

    [Fact]
    public async Task AFullQueueIs429WithRetryAfter()
    {
        // 5 MB of KV cache hold 640 positions of the whole model: room for the long stream, not for a second 200 tokens.
        using var api = new ApiProcess(Model, "--Api:KvCacheMegabytes=5", "--Api:MaxWaitingRequests=0");
        using var http = new HttpClient { BaseAddress = api.BaseAddress };

        // A long stream holds most of the KV cache; a repetition "penalty" below 1 keeps it from ending early.
        var longAnswer = new { model = "exo-tiny", prompt = "Chapter 1", max_tokens = 500, temperature = 0, repetition_penalty = 0.05, stream = true };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = JsonContent.Create(longAnswer) };
        using var busy = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await busy.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: ", await reader.ReadLineAsync());

        using var refused = await http.PostAsJsonAsync("/v1/completions", new { model = "exo-tiny", prompt = "hi", max_tokens = 200 });
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        var error = await Error(refused);
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.Equal("rate_limit_error", error.GetProperty("type").GetString());

        // Ollama's API is refused alike, in Ollama's error shape.
        using var ollama = await http.PostAsJsonAsync("/api/generate", new { model = "exo-tiny", prompt = "hi", options = new { num_predict = 200 } });
        Assert.Equal(HttpStatusCode.TooManyRequests, ollama.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(1), ollama.Headers.RetryAfter?.Delta);
        Assert.Contains("no KV cache free", await OllamaError(ollama));

        // More than the whole KV cache holds is no reason to retry: a 400 naming max_tokens.
        using var tooLarge = await http.PostAsJsonAsync("/v1/completions", new { model = "exo-tiny", prompt = "hi", max_tokens = 700 });
        Assert.Equal(HttpStatusCode.BadRequest, tooLarge.StatusCode);
        Assert.Equal("max_tokens", (await Error(tooLarge)).GetProperty("param").GetString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AModelWithNoReadyRingIs503WithRetryAfter(bool stream)
    {
        // A cluster whose planner never answers: no model has a placement.
        var nowhere = $"http://127.0.0.1:{Ports.Free()}";
        using var api = new ApiProcess(Model, "--services:planner:grpc:0=" + nowhere, "--services:registry:grpc:0=" + nowhere);
        using var http = new HttpClient { BaseAddress = api.BaseAddress };

        using var refused = await http.PostAsJsonAsync("/v1/chat/completions",
            new { model = "exo-tiny", messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 3, stream });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(5), refused.Headers.RetryAfter?.Delta);
        var error = await Error(refused);
        Assert.Equal("model_not_ready", error.GetProperty("code").GetString());
        Assert.Contains("exo-tiny", error.GetProperty("message").GetString());

        // Ollama's API too, streaming by default: the status comes before any line of the stream.
        using var ollama = await http.PostAsJsonAsync("/api/chat",
            new { model = "exo-tiny", messages = new[] { new { role = "user", content = "hi" } }, options = new { num_predict = 3 }, stream });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ollama.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(5), ollama.Headers.RetryAfter?.Delta);
        Assert.Contains("exo-tiny", await OllamaError(ollama));
        // No placement is ready, so Ollama's list of running models is empty.
        Assert.Equal(0, JsonDocument.Parse(await http.GetStringAsync("/api/ps")).RootElement.GetProperty("models").GetArrayLength());
    }

    private static async Task<string?> OllamaError(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString();

    private static async Task<JsonElement> Error(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
}
