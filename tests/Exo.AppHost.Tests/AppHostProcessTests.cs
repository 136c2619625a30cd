using System.ClientModel;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using OpenAI;
using OpenAI.Chat;

namespace Exo.AppHost.Tests;

/// <summary>
/// The AppHost as a user runs it: a whole cluster of real processes under Aspire (Redis, registry, planner, three
/// workers, the API and the gateway) with the dashboard and an API key, asked through the official OpenAI SDK and the
/// web chat, looked at in the dashboard with headless Chromium, losing workers, and stopped with SIGTERM.
/// </summary>
public sealed partial class AppHostProcessTests : IDisposable
{
    private const string Question = "Tell me about Elizabeth.";
    private const int MaxTokens = 24;
    private const string Key = "sesame";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);
    private static readonly string[] Workers = ["worker-1", "worker-2", "worker-3"];

    private readonly TempDirectory _data = new();

    public void Dispose() => _data.Dispose();

    private sealed record Placement(long Version, bool Ready, List<string> Endpoints);

    [Fact]
    public async Task AThreeWorkerClusterAnswersAsOneProcessDoesShowsItsTraceRecoversWorkersAndLeavesNothingRunning()
    {
        var port = Ports.Free();
        var dashboardPort = Ports.FreePair();
        using var apphost = ServiceProcess.Start("Exo.AppHost.dll",
            ["--workers", "3", "--replicas", "1", "--port", $"{port}", "--dashboard-port", $"{dashboardPort}", "--data-dir", _data.Path, "--ready-timeout", "150", "--api-key", Key]);
        HashSet<int> owned = [];
        try
        {
            await apphost.WaitForLogAsync("ready: ", TimeSpan.FromSeconds(240));
            var log = apphost.Log;
            Assert.Matches(@"(?m)^ready: exo-tiny on 3 workers, layers \[0, \d\) worker-\d, \[\d, \d\) worker-\d, \[\d, 8\) worker-\d", log);
            Assert.Contains($"web chat: http://localhost:{port}/", log);
            Assert.Contains($"API base: http://localhost:{port}/v1", log);
            var login = LoginUrl().Match(log);
            Assert.True(login.Success, $"no dashboard login URL in:\n{log}");
            owned = ProcessTree.Of(apphost.Id);
            Assert.Equal(3, ProcessTree.Running(owned, "Exo.ShardWorker").Count);
            Assert.Single(ProcessTree.Running(owned, "redis-server"));
            // Redis keeps the cluster's state on disk under the data directory: a restart loses nothing.
            Assert.True(Directory.Exists(Path.Combine(_data.Path, "redis", "appendonlydir")), "no append-only file under the data directory");
            // Every service is given the cluster's join secret, made once in the data directory.
            var secret = ClusterSecretFile.LoadOrCreate(_data.Path);
            List<int> members = [.. ProcessTree.Running(owned, "Exo.ShardWorker"), .. ProcessTree.Running(owned, "Exo.Registry")];
            Assert.Equal(4, members.Count);
            Assert.All(members, pid => Assert.Equal(secret, ProcessTree.Environment(pid, "Cluster__Secret")));

            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
            // The gateway wants the key of everything but health and the web chat's page.
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/cluster")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health")).StatusCode);
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
            var chat = new OpenAIClient(new ApiKeyCredential(Key), new OpenAIClientOptions { Endpoint = new Uri(http.BaseAddress, "/v1") }).GetChatClient("exo-tiny");

            // The official SDK, whole and streamed, gets exactly what one process's greedy generation gives.
            var expected = LocalChat();
            Assert.False(string.IsNullOrWhiteSpace(expected));
            Assert.Equal(expected, await CompleteAsync(chat));
            Assert.Equal(expected, await StreamAsync(chat));

            // So does the web chat, typed into in a browser, once it has asked for the key (refusing a wrong one) and kept it.
            using (var page = Browser("web-chat.mjs", $"http://localhost:{port}/", Question, $"{MaxTokens}", Key))
            {
                Assert.Equal(expected, page.RootElement.GetProperty("answer").GetString());
                Assert.Contains($"{MaxTokens} tokens", page.RootElement.GetProperty("stats").GetString());
                var key = page.RootElement.GetProperty("key");
                Assert.Equal("This gateway needs an API key", key.GetProperty("asked").GetString());
                Assert.Equal("That API key was refused; enter another", key.GetProperty("refused").GetString());
                Assert.True(key.GetProperty("hiddenOnceRight").GetBoolean());
                Assert.False(key.GetProperty("askedAfterReload").GetBoolean());
                Assert.Equal(Key, key.GetProperty("stored").GetString());
            }

            // The dashboard shows the request's trace through the gateway, the API and every stage.
            var spans = DashboardTrace(login.Value);
            Assert.Contains(("POST /v1/{**rest}", "gateway"), spans);
            Assert.Contains(("chat exo-tiny", "api"), spans);
            foreach (var worker in Workers)
            {
                Assert.Contains(("stage prefill", worker), spans);
                Assert.Contains(spans, s => s.Resource == worker && s.Name.StartsWith("stage decode", StringComparison.Ordinal));
            }

            // A worker that stops cleanly leaves the cluster: the ring is re-planned over the other two, then, once the
            // AppHost has started it again, over three.
            var before = await PlacementAsync(http);
            ServiceProcess.Signal(WorkerPid(owned, "worker-3"), ServiceProcess.SigTerm);
            var two = await WaitForPlacementAsync(http, p => p.Version > before.Version && p.Endpoints.Count == 2);
            var three = await WaitForPlacementAsync(http, p => p.Version > two.Version && p.Ready && p.Endpoints.Count == 3);
            Assert.Matches(@"worker-3 ended with exit code \d+; restarting it in \d+ s \(restart 1\)", apphost.Log);

            // A killed worker is restarted too, rejoins, and the answer does not change.
            var killed = WorkerPid(owned, "worker-2");
            ServiceProcess.Signal(killed, ServiceProcess.SigKill);
            await apphost.WaitForLogAsync("worker-2 ended with exit code 137; restarting it", Patience);
            Assert.True(ProcessChecks.Eventually(() => ProcessTree.Running(ProcessTree.Of(apphost.Id), "Exo.ShardWorker").Count == 3, Patience), apphost.Log);
            Assert.DoesNotContain(killed, ProcessTree.Running(ProcessTree.Of(apphost.Id), "Exo.ShardWorker"));
            // Its predecessor's lease expires a few seconds later and the ring is re-planned round the new process: a
            // client meanwhile gets 503 "retry in a few seconds", or a request cut by the re-plan, and retries as told.
            Assert.Equal(expected, await RetriedAsync(() => CompleteAsync(chat)));
            await WaitForPlacementAsync(http, p => p.Version >= three.Version && p.Ready && p.Endpoints.Count == 3);
            Assert.DoesNotContain("worker-2 ended with exit code 3", apphost.Log);

            // SIGTERM stops the AppHost and everything it started.
            owned.UnionWith(ProcessTree.Of(apphost.Id));
            Assert.True(apphost.Terminate(TimeSpan.FromSeconds(60)), "the AppHost did not stop within 60 s of SIGTERM");
            Assert.True(ProcessChecks.Eventually(() => !owned.Any(ProcessChecks.IsRunning), TimeSpan.FromSeconds(45)),
                $"still running after the AppHost stopped: {string.Join(", ", owned.Where(ProcessChecks.IsRunning).Select(Describe))}");
        }
        finally
        {
            // Whatever failed above, nothing outlives the test.
            owned.UnionWith(ProcessTree.Of(apphost.Id));
            // Only those still ours: a pid seen earlier may have been handed to another process since.
            foreach (var pid in ProcessTree.Of(apphost.Id).Where(ProcessChecks.IsRunning)) ServiceProcess.Signal(pid, ServiceProcess.SigKill);
            apphost.Dispose();
        }
    }

    [Theory]
    [InlineData("--model", "/nonexistent/model", "error: model folder /nonexistent/model does not exist")]
    [InlineData("--workers", "0", "error: --workers must be between 1 and 64, not 0")]
    [InlineData("--workers", "many", "error: Cannot parse argument 'many' for option '--workers'")]
    [InlineData("--replicas", "0", "error: --replicas must be auto or a positive number of rings, not 0")]
    public void BadInputIsOneErrorLineAndExitCode2(string option, string value, string error)
    {
        var (exitCode, output, stderr) = ServiceProcess.Run("Exo.AppHost.dll", null, option, value);

        Assert.Equal(2, exitCode);
        Assert.StartsWith(error, stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("", output);
    }

    [Fact]
    public void HelpExplainsTheOptions()
    {
        var (exitCode, output, _) = ServiceProcess.Run("Exo.AppHost.dll", null, "--help");

        Assert.Equal(0, exitCode);
        Assert.All(["--model", "--workers", "--replicas", "auto|N", "--api-replicas", "--port", "--dashboard-port", "--no-dashboard", "--ready-timeout", "--data-dir", "--api-key", "--public", "cluster-secret", "redis-server", "Ctrl-C"],
            text => Assert.Contains(text, output));
    }

    /// <summary>The greedy answer of `exo chat` (one process, whole model).</summary>
    private static string LocalChat()
    {
        var (code, output, error) = ServiceProcess.Run("exo.dll", Question + "\n", "chat", "--model", RepositoryPaths.ShippedModel, "--max-tokens", $"{MaxTokens}");
        Assert.True(code == 0, error);
        return output.EndsWith('\n') ? output[..^1] : output;
    }

    private static ChatCompletionOptions Greedy => new() { Temperature = 0, MaxOutputTokenCount = MaxTokens };

    private static async Task<string> CompleteAsync(ChatClient chat) =>
        (await chat.CompleteChatAsync([new UserChatMessage(Question)], Greedy)).Value.Content[0].Text;

    private static async Task<string> StreamAsync(ChatClient chat)
    {
        var text = new StringBuilder();
        var updates = 0;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage(Question)], Greedy))
        {
            updates++;
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
        }

        Assert.True(updates > MaxTokens / 2, $"tokens arrive one by one, not in {updates} updates");
        return text.ToString();
    }

    /// <summary>The spans of the newest chat trace, as the dashboard lists them.</summary>
    private static List<(string Name, string Resource)> DashboardTrace(string login)
    {
        var wanted = string.Join(",", ["POST /v1/@gateway", "chat exo-tiny@api", .. Workers.SelectMany(w => new[] { $"stage prefill@{w}", $"stage decode@{w}" })]);
        using var json = Browser("find-trace.mjs", login, wanted);
        return [.. json.RootElement.GetProperty("spans").EnumerateArray().Select(s => (s.GetProperty("name").GetString()!, s.GetProperty("resource").GetString()!))];
    }

    /// <summary>Runs one of the browser checks in tests/Exo.AppHost.Tests/browser (playwright-core in Debian's Chromium); its JSON output.</summary>
    private static JsonDocument Browser(string script, params string[] args)
    {
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(RepositoryPaths.Root, "tests", "Exo.AppHost.Tests", "browser", script));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var node = Process.Start(start)!;
        var output = node.StandardOutput.ReadToEndAsync();
        var error = node.StandardError.ReadToEndAsync();
        try
        {
            Assert.True(node.WaitForExit(120_000), $"{script} did not finish in 2 minutes");
            node.WaitForExit();
            Assert.True(node.ExitCode == 0, $"{script} failed ({node.ExitCode}): {error.Result}");
            return JsonDocument.Parse(output.Result);
        }
        finally
        {
            // A script that hangs takes its Chromium with it.
            if (!node.HasExited) node.Kill(entireProcessTree: true);
        }
    }

    /// <summary>What a client that retries failed requests for <see cref="Patience"/> finally gets.</summary>
    private static async Task<string> RetriedAsync(Func<Task<string>> request)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await request();
            }
            catch (ClientResultException) when (clock.Elapsed < Patience)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
    }

    private static async Task<Placement> PlacementAsync(HttpClient http)
    {
        var cluster = await http.GetFromJsonAsync<JsonElement>("/api/cluster");
        var placement = cluster.GetProperty("placements").EnumerateArray().Single();
        return new Placement(placement.GetProperty("version").GetInt64(), placement.GetProperty("ready").GetBoolean(),
            [.. placement.GetProperty("rings").EnumerateArray().Single().GetProperty("stages").EnumerateArray().Select(s => s.GetProperty("endpoint").GetString()!)]);
    }

    private static async Task<Placement> WaitForPlacementAsync(HttpClient http, Func<Placement, bool> condition)
    {
        var clock = Stopwatch.StartNew();
        Placement? last = null;
        while (clock.Elapsed < Patience)
        {
            last = await PlacementAsync(http);
            if (condition(last)) return last;
            await Task.Delay(100);
        }

        throw new TimeoutException($"no such placement within {Patience}; the last was {last}");
    }

    private static int WorkerPid(IEnumerable<int> owned, string worker) =>
        ProcessTree.Running(owned, "Exo.ShardWorker").Single(pid => ProcessTree.Environment(pid, "ShardWorker__DataDir")?.EndsWith(worker, StringComparison.Ordinal) == true);

    private static string Describe(int pid)
    {
        try
        {
            return $"{pid} {File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim()}";
        }
        catch (IOException)
        {
            return $"{pid}";
        }
    }

    [GeneratedRegex(@"http://localhost:\d+/login\?t=[0-9a-f]+")]
    private static partial Regex LoginUrl();
}
