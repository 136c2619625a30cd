using System.ClientModel;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using Xunit.Abstractions;

namespace Exo.Cluster.Tests;

/// <summary>
/// Machines leaving and joining while an answer streams, on a cluster of real processes: workers killed with SIGKILL
/// (a power cut, as far as the rest can tell) at the first, a middle and the last stage, one joining mid-answer, and
/// the last one gone. The client, on the official OpenAI SDK, must see the fault-free answer, token for token.
/// </summary>
public sealed class FaultTests(Cluster cluster, ITestOutputHelper output) : IClassFixture<Cluster>
{
    private const string Question = "Tell me about Elizabeth.";
    private const int Tokens = 160;

    /// <summary>Where the fault strikes: after this many tokens have reached the client.</summary>
    private const int FaultAfter = 4;

    /// <summary>
    /// The shipped model's end tokens, banned by logit_bias: every answer runs to <see cref="Tokens"/> tokens (its own
    /// greedy answer without them), long enough that a re-plan lands while it is still being generated however fast
    /// the machine is (the natural answer ends after about 40 chunks, a second on a quiet machine).
    /// </summary>
    private static readonly int[] EndTokens = [0, 2];

    private const int SigStop = 19;
    private const int SigCont = 18;

    private readonly OpenAIClient _client = new(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(cluster.Api, "/v1") });

    private sealed record Streamed(string Text, int Tokens, TimeSpan LongestGap, string? Finish);

    /// <summary>Streams the answer; <paramref name="fault"/> runs once <see cref="FaultAfter"/> tokens have arrived.</summary>
    private async Task<Streamed> StreamAsync(Func<Task>? fault)
    {
        var text = new StringBuilder();
        var (tokens, longest, clock) = (0, TimeSpan.Zero, Stopwatch.StartNew());
        var last = TimeSpan.Zero;
        string? finish = null;
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = Tokens };
        foreach (var end in EndTokens) options.LogitBiases[end] = -100;
        await foreach (var update in _client.GetChatClient(Cluster.Model).CompleteChatStreamingAsync([new UserChatMessage(Question)], options))
        {
            finish ??= update.FinishReason?.ToString();
            if (update.ContentUpdate.Count == 0) continue;
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            var now = clock.Elapsed;
            // The first token's wait is prefill, not a fault.
            if (tokens > 0 && now - last > longest) longest = now - last;
            last = now;
            if (++tokens == FaultAfter && fault is not null) await fault();
        }

        return new Streamed(text.ToString(), tokens, longest, finish);
    }

    /// <summary>How many times the API has moved a request to another ring.</summary>
    private int Resumes() => cluster.ApiProcess.Log.Split("Resumed a request").Length - 1;

    private void Report(string fault, Streamed seen, Streamed expected) =>
        output.WriteLine($"| {fault} | {(seen.Text == expected.Text ? "complete, identical text" : "DIFFERENT TEXT")} ({seen.Tokens} chunks) | {seen.LongestGap.TotalSeconds:0.00} s |");

    [Fact]
    public async Task AnAnswerStreamsOnWhileWorkersDieAndJoin()
    {
        var initial = await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == 3, TimeSpan.FromSeconds(60));
        var expected = await StreamAsync(null);
        Assert.True(expected.Tokens > 4 * FaultAfter, $"a long enough answer to strike in the middle of: {expected.Tokens} chunks");
        output.WriteLine("| fault | what the client saw | longest wait between tokens |");
        output.WriteLine("|---|---|---|");
        Report("none", expected, expected);
        var placement = initial;

        // A middle stage, then the last, then the first: each killed mid-answer, its layers re-planned over the rest.
        foreach (var (name, pick) in new (string, Func<PlacementInfo, StageInfo>)[]
                 {
                     ("kill -9 the middle stage", p => p.Stages[1]),
                     ("kill -9 the last stage", p => p.Stages[^1]),
                 })
        {
            var victim = cluster.WorkerOf(pick(placement));
            var resumes = Resumes();
            var seen = await StreamAsync(() =>
            {
                victim.Dispose();
                return Task.CompletedTask;
            });
            Report(name, seen, expected);
            Assert.Equal(expected.Text, seen.Text);
            Assert.True(Resumes() > resumes, $"{name}: the answer moved to the re-planned ring");
            Assert.True(seen.LongestGap < TimeSpan.FromSeconds(6), $"{name}: the answer stalled {seen.LongestGap.TotalSeconds:0.0} s");
            var before = placement;
            placement = await cluster.WaitForPlacementAsync(p => p.Ready && p.Version > before.Version && p.Stages.Count == before.Stages.Count - 1, TimeSpan.FromSeconds(30));
        }

        // A machine joins: the ring is re-planned over one more stage while an answer streams. The planner is paused
        // (SIGSTOP) while the worker registers and let go mid-answer, so the re-plan lands then, not before.
        var grownFrom = placement;
        var resumedBefore = Resumes();
        Assert.True(ServiceProcess.Signal(cluster.PlannerProcess.Id, SigStop));
        cluster.StartWorker().WaitUntilListening(TimeSpan.FromSeconds(60));
        await cluster.WaitForNodesAsync(grownFrom.Stages.Count + 1, TimeSpan.FromSeconds(30));
        var joined = await StreamAsync(() =>
        {
            Assert.True(ServiceProcess.Signal(cluster.PlannerProcess.Id, SigCont));
            return Task.CompletedTask;
        });
        Report("a worker joins", joined, expected);
        Assert.Equal(expected.Text, joined.Text);
        Assert.True(Resumes() > resumedBefore, "the re-plan landed while the answer streamed, and the answer moved to the new ring");
        placement = await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == grownFrom.Stages.Count + 1, TimeSpan.FromSeconds(30));

        var first = cluster.WorkerOf(placement.Stages[0]);
        var resumedFirst = Resumes();
        var seenFirst = await StreamAsync(() =>
        {
            first.Dispose();
            return Task.CompletedTask;
        });
        Report("kill -9 the first stage", seenFirst, expected);
        Assert.Equal(expected.Text, seenFirst.Text);
        Assert.True(Resumes() > resumedFirst, "the answer moved to the re-planned ring");
        Assert.True(seenFirst.LongestGap < TimeSpan.FromSeconds(6), $"the answer stalled {seenFirst.LongestGap.TotalSeconds:0.0} s when the first stage died");

        // The last worker goes: nothing can hold the model, and the client is told so in the stream, keeping what it got.
        var survivors = await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == 1, TimeSpan.FromSeconds(30));
        var (partial, error) = await StreamRawAsync(() => cluster.WorkerOf(survivors.Stages[0]).Dispose());
        output.WriteLine($"| kill -9 the only worker | {partial.Length} characters, then: {error} | – |");
        Assert.StartsWith(partial, expected.Text, StringComparison.Ordinal);
        Assert.Contains("cannot hold it", error, StringComparison.Ordinal);

        // Machines come back: the cluster serves again by itself.
        cluster.StartWorker().WaitUntilListening(TimeSpan.FromSeconds(60));
        cluster.StartWorker().WaitUntilListening(TimeSpan.FromSeconds(60));
        await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == 2, TimeSpan.FromSeconds(60));
        Assert.Equal(expected.Text, (await StreamAsync(null)).Text);

        // The registry dies mid-answer: the ring does not need it while it streams. Started again, it learns the
        // members back from their heartbeats and the API's watch.
        var registry = cluster.RegistryProcess;
        var withoutRegistry = await StreamAsync(() =>
        {
            registry.Dispose();
            return Task.CompletedTask;
        });
        Report("kill -9 the registry", withoutRegistry, expected);
        Assert.Equal(expected.Text, withoutRegistry.Text);
        var restarted = Stopwatch.StartNew();
        cluster.Restart(registry);
        await cluster.WaitForNodesAsync(2, TimeSpan.FromSeconds(30));
        output.WriteLine($"| registry started again | {restarted.Elapsed.TotalSeconds:0.0} s until both workers were members again | – |");

        // With the planner gone, a worker loss cannot be re-planned: the client hears which service is missing, at once.
        cluster.PlannerProcess.Dispose();
        var lostAt = Stopwatch.StartNew();
        var pair = await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == 2, TimeSpan.FromSeconds(5));
        var (_, plannerError) = await StreamRawAsync(() =>
        {
            cluster.WorkerOf(pair.Stages[1]).Dispose();
            lostAt.Restart();
        });
        output.WriteLine($"| planner down, then kill -9 a worker | error after {lostAt.Elapsed.TotalSeconds:0.00} s: {plannerError} | – |");
        Assert.Contains("Exo.Planner", plannerError, StringComparison.Ordinal);
        Assert.True(lostAt.Elapsed < TimeSpan.FromSeconds(6), $"the client waited {lostAt.Elapsed.TotalSeconds:0.0} s to hear of it");

        // The planner comes back, restores its placements from Redis and plans the worker out.
        restarted.Restart();
        cluster.Restart(cluster.PlannerProcess);
        await cluster.WaitForPlacementAsync(p => p.Ready && p.Stages.Count == 1, TimeSpan.FromSeconds(30));
        output.WriteLine($"| planner started again | serving again after {restarted.Elapsed.TotalSeconds:0.0} s | – |");
        Assert.Equal(expected.Text, (await StreamAsync(null)).Text);
    }

    /// <summary>Streams over plain HTTP, to read the error event an SDK would hide: the text before it, and its message.</summary>
    private async Task<(string Text, string Error)> StreamRawAsync(Action fault)
    {
        using var http = new HttpClient { BaseAddress = cluster.Api };
        var body = new
        {
            model = Cluster.Model, stream = true, temperature = 0, max_tokens = Tokens, messages = new[] { new { role = "user", content = Question } },
            logit_bias = EndTokens.ToDictionary(t => t.ToString(System.Globalization.CultureInfo.InvariantCulture), _ => -100),
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent.Create(body) };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new StringBuilder();
        var chunks = 0;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]") continue;
            using var chunk = JsonDocument.Parse(line[6..]);
            if (chunk.RootElement.TryGetProperty("error", out var error)) return (text.ToString(), error.GetProperty("message").GetString()!);
            foreach (var choice in chunk.RootElement.GetProperty("choices").EnumerateArray())
            {
                if (choice.GetProperty("delta").TryGetProperty("content", out var content)) text.Append(content.GetString());
            }

            // At the first words: the whole answer must not have been generated before the fault lands.
            if (++chunks == 2) fault();
        }

        return (text.ToString(), "the stream ended without an error");
    }
}
