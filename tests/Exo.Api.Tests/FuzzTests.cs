using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace Exo.Api.Tests;

/// <summary>
/// Random mutations of valid requests against a real API process: wrong types, missing and repeated fields, huge and
/// negative numbers, deep nesting, long strings, broken UTF-8, cut-off bodies. Every answer must be a success or a 4xx
/// in OpenAI's error shape; the process must live on, answer a valid request afterwards and stay within bounded memory.
/// The seed is fixed, so a failure repeats.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output) : IDisposable
{
    private const int Requests = 400;
    private readonly ApiProcess _api = new("--Api:Models:0=" + ApiProcess.Model("exo-tiny"));
    private readonly Random _random = new(20261207);

    public void Dispose() => _api.Dispose();

    private static JsonObject Chat() => new()
    {
        ["model"] = "exo-tiny",
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = "Be brief." }, new JsonObject { ["role"] = "user", ["content"] = "Hello there" }),
        ["max_tokens"] = 2,
        ["temperature"] = 0.5,
        ["top_p"] = 0.9,
        ["stop"] = new JsonArray("\n"),
        ["stream"] = false,
        ["seed"] = 1,
        ["logprobs"] = true,
        ["top_logprobs"] = 2,
    };

    private static JsonObject Completion() => new()
    {
        ["model"] = "exo-tiny",
        ["prompt"] = "Once upon a time",
        ["max_tokens"] = 2,
        ["temperature"] = 0,
        ["echo"] = false,
        ["stream"] = true,
        ["logprobs"] = 1,
    };

    /// <summary>A value of an arbitrary type and size, to put where another was.</summary>
    private JsonNode? AnyValue() => _random.Next(14) switch
    {
        0 => null,
        1 => JsonValue.Create(_random.Next(2) == 0),
        2 => JsonValue.Create(-_random.Next(1, int.MaxValue)),
        3 => JsonValue.Create(long.MaxValue),
        4 => JsonValue.Create(1e300),
        5 => JsonValue.Create(_random.NextDouble()),
        6 => JsonValue.Create(""),
        7 => JsonValue.Create(new string('a', _random.Next(1, 200_000))),
        8 => JsonValue.Create("\u0000\ud83d\ude00\u200b<|im_end|></s>"),
        9 => new JsonArray(),
        10 => new JsonArray(JsonValue.Create(1), JsonValue.Create("two"), null),
        11 => new JsonObject(),
        12 => new JsonObject { ["role"] = "user", ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "hi" }) },
        _ => JsonValue.Create(_random.Next(0, 5000)),
    };

    /// <summary>Every object and array in the tree, the root included.</summary>
    private static List<JsonNode> Containers(JsonNode node)
    {
        var found = new List<JsonNode> { node };
        IEnumerable<JsonNode?> children = node switch
        {
            JsonObject o => o.Select(p => p.Value),
            JsonArray a => a,
            _ => [],
        };
        foreach (var child in children)
        {
            if (child is JsonObject or JsonArray) found.AddRange(Containers(child));
        }

        return found;
    }

    /// <summary>One to three structural mutations of the tree.</summary>
    private void Mutate(JsonObject root)
    {
        for (var n = _random.Next(1, 4); n > 0; n--)
        {
            var containers = Containers(root);
            var target = containers[_random.Next(containers.Count)];
            switch (target)
            {
                case JsonObject o when o.Count > 0:
                    var key = o.ElementAt(_random.Next(o.Count)).Key;
                    if (_random.Next(3) == 0) o.Remove(key);
                    else o[key] = AnyValue();
                    break;
                case JsonArray a when a.Count > 0:
                    var i = _random.Next(a.Count);
                    if (_random.Next(3) == 0) a.RemoveAt(i);
                    else a[i] = AnyValue();
                    break;
                case JsonObject o:
                    o["x" + _random.Next(100)] = AnyValue();
                    break;
                case JsonArray a:
                    a.Add(AnyValue());
                    break;
            }
        }
    }

    /// <summary>The request's bytes, sometimes damaged below the JSON level.</summary>
    private byte[] Bytes(JsonObject request)
    {
        var bytes = Encoding.UTF8.GetBytes(request.ToJsonString());
        switch (_random.Next(10))
        {
            case 0:
                return bytes[..(_random.Next(bytes.Length))];
            case 1:
                // A byte that is not UTF-8 inside the text.
                var broken = (byte[])bytes.Clone();
                broken[_random.Next(broken.Length)] = (byte)(0x80 + _random.Next(0x80));
                return broken;
            case 2:
                var depth = _random.Next(100, 100_000);
                return Encoding.UTF8.GetBytes($"{{\"model\":\"exo-tiny\",\"prompt\":{new string('[', depth)}1{new string(']', depth)}}}");
            case 3:
                // A key given twice, the second of another type.
                return Encoding.UTF8.GetBytes(request.ToJsonString()[..^1] + ",\"model\":[1]}");
            default:
                return bytes;
        }
    }

    private static long Rss(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;

    [Fact]
    public async Task MutatedRequestsGetOpenAiErrorsNeverAServerError()
    {
        using var http = new HttpClient { BaseAddress = _api.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        var statuses = new Dictionary<int, int>();
        var peak = 0L;
        var clock = Stopwatch.StartNew();
        for (var n = 0; n < Requests; n++)
        {
            var chat = _random.Next(2) == 0;
            var request = chat ? Chat() : Completion();
            Mutate(request);
            var body = Bytes(request);
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var response = await http.PostAsync(chat ? "/v1/chat/completions" : "/v1/completions", content);
            var status = (int)response.StatusCode;
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            var text = await response.Content.ReadAsStringAsync();
            var sent = Encoding.UTF8.GetString(body);
            Assert.True(status < 500, $"request {n} got {status}: {text}\nit was: {(sent.Length > 2000 ? sent[..2000] + "…" : sent)}");
            if (status >= 400)
            {
                var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
                Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()), $"request {n}: an error without a message");
                Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
            }

            peak = Math.Max(peak, Rss(_api.ProcessId));
        }

        output.WriteLine($"{Requests} requests in {clock.Elapsed.TotalSeconds:0.0} s: {string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Value} x {s.Key}"))}; API memory at most {peak / 1e6:0} MB");
        Assert.True(statuses.Keys.Any(s => s < 300), "some mutations leave a valid request, which is answered");
        Assert.True(peak < 600_000_000, $"the API reached {peak / 1e6:0} MB");

        using var valid = new ByteArrayContent(Encoding.UTF8.GetBytes(Completion().ToJsonString()));
        valid.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var after = await http.PostAsync("/v1/completions", valid);
        Assert.True(after.IsSuccessStatusCode, "the API still answers a valid request");
    }
}
