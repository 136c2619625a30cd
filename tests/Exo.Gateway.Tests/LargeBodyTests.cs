using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace Exo.Gateway.Tests;

/// <summary>
/// Eight 7 MB request bodies at once, through a real gateway to a real API: each is refused with an OpenAI error, the
/// memory of both processes stays within twice their idle size, and another user's answer keeps its pace.
/// </summary>
public sealed class LargeBodyTests(ITestOutputHelper output) : IDisposable
{
    private readonly Service _api = Service.Api();

    public void Dispose() => _api.Dispose();

    /// <summary>Resident memory of a process, from /proc.</summary>
    private static long Rss(ServiceProcess process)
    {
        var line = File.ReadLines($"/proc/{process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }

    private static async Task<TimeSpan> TimeToFirstTokenAsync(HttpClient http)
    {
        var clock = Stopwatch.StartNew();
        var body = new { model = "exo-tiny", stream = true, max_tokens = 8, temperature = 0, messages = new[] { new { role = "user", content = "Tell me about Elizabeth." } } };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(body) };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Contains("\"content\":\"", StringComparison.Ordinal) && !line.Contains("\"content\":\"\"", StringComparison.Ordinal)) return clock.Elapsed;
        }

        throw new InvalidOperationException("the answer had no content");
    }

    [Fact]
    public async Task EightSevenMegabyteBodiesAtOnceCostLittleMemoryAndNoOneElsesTime()
    {
        // The gateway sends to this API only; its replica list is what the AppHost's reference would give.
        using var gateway = Service.Gateway([_api]);
        using var http = new HttpClient { BaseAddress = gateway.Address, Timeout = TimeSpan.FromMinutes(2) };
        var quiet = await TimeToFirstTokenAsync(http);
        await Task.Delay(500);
        var idle = (Gateway: Rss(gateway.Process), Api: Rss(_api.Process));

        var peak = idle;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peak = (Math.Max(peak.Gateway, Rss(gateway.Process)), Math.Max(peak.Api, Rss(_api.Process)));
                await Task.Delay(10);
            }
        });

        var text = new string('x', 7_000_000);
        var payload = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { model = "exo-tiny", messages = new[] { new { role = "user", content = text } } }));
        var bodies = Enumerable.Range(0, 8).Select(async _ =>
        {
            using var content = new ByteArrayContent(payload);
            content.Headers.ContentType = new("application/json");
            using var response = await http.PostAsync("/v1/chat/completions", content);
            var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            return ((int)response.StatusCode, error.GetProperty("code").GetString());
        }).ToArray();
        var busy = await TimeToFirstTokenAsync(http);
        var answers = await Task.WhenAll(bodies);
        await sampling.CancelAsync();
        await sampler;

        output.WriteLine($"answers: {string.Join(", ", answers.Select(a => $"{a.Item1} {a.Item2}"))}");
        output.WriteLine($"gateway: {idle.Gateway / 1e6:0} MB idle, {peak.Gateway / 1e6:0} MB at most under 8 x 7 MB bodies");
        output.WriteLine($"api: {idle.Api / 1e6:0} MB idle, {peak.Api / 1e6:0} MB at most");
        output.WriteLine($"another user's time to first token: {quiet.TotalSeconds:0.00} s alone, {busy.TotalSeconds:0.00} s during the bodies");
        Assert.All(answers, a => Assert.InRange(a.Item1, 400, 499));
        Assert.True(peak.Gateway <= 2 * idle.Gateway, $"the gateway grew from {idle.Gateway / 1e6:0} MB to {peak.Gateway / 1e6:0} MB");
        Assert.True(peak.Api <= 2 * idle.Api, $"the API grew from {idle.Api / 1e6:0} MB to {peak.Api / 1e6:0} MB");
        // Beside the same request alone, not an absolute time: a machine busy with other work is slower at both.
        Assert.True(busy < quiet + TimeSpan.FromSeconds(1), $"another user waited {busy.TotalSeconds:0.0} s for a first token, {quiet.TotalSeconds:0.0} s alone");
    }
}
