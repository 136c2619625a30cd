using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Exo.AppHost.Tests;

/// <summary>The AppHost as a user runs it: a whole cluster of real processes, one chat completion, Ctrl-C, nothing left.</summary>
public sealed partial class AppHostProcessTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), $"exo-apphost-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dataDir)) Directory.Delete(_dataDir, recursive: true);
    }

    [Fact]
    public async Task ACompleteClusterAnswersAndCtrlCLeavesNothingRunning()
    {
        var port = Ports.Free();
        using var apphost = ServiceProcess.Start("Exo.AppHost.dll", ["--workers", "1", "--port", port.ToString(), "--data-dir", _dataDir, "--ready-timeout", "150"]);
        List<int> children = [];
        try
        {
            Assert.True(ProcessChecks.Eventually(() => apphost.Log.Contains("ready: ") || apphost.Log.Contains("error: ") || apphost.Log.Contains("not ready after"), TimeSpan.FromSeconds(180)), apphost.Log);
            Assert.Matches(@"ready: exo-tiny on 1 worker, layers \[0, \d+\) worker-1", apphost.Log);
            Assert.Contains($"web chat: http://localhost:{port}/", apphost.Log);
            Assert.Contains($"API base: http://localhost:{port}/v1", apphost.Log);
            Assert.Matches(@"(?m)^worker-1 \| ", apphost.Log);

            children = [.. Started().Matches(apphost.Log).Select(m => int.Parse(m.Groups[1].Value))];
            Assert.Equal(5, children.Count); // redis, registry, planner, worker-1, gateway
            Assert.All(children, pid => Assert.True(ProcessChecks.IsRunning(pid), $"pid {pid} is not running"));

            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
            using var response = await http.PostAsJsonAsync("/v1/chat/completions", new
            {
                model = "exo-tiny",
                messages = new[] { new { role = "user", content = "Who are you?" } },
                max_tokens = 8,
                temperature = 0,
            });
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, body);
            using var json = JsonDocument.Parse(body);
            Assert.False(string.IsNullOrEmpty(json.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()), body);

            Assert.Equal(0, apphost.Interrupt(TimeSpan.FromSeconds(60)));
            Assert.Contains("stopped", apphost.Log);
            Assert.All(children, pid => Assert.False(ProcessChecks.IsRunning(pid), $"pid {pid} still runs after the AppHost stopped"));
        }
        finally
        {
            // Whatever failed above, no child outlives the test.
            foreach (var pid in children.Where(ProcessChecks.IsRunning)) KillQuietly(pid);
        }
    }

    [Theory]
    [InlineData("--model", "/nonexistent/model", "error: model folder /nonexistent/model does not exist")]
    [InlineData("--workers", "0", "error: --workers must be between 1 and 64, not 0")]
    [InlineData("--workers", "many", "error: Cannot parse argument 'many' for option '--workers'")]
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
        Assert.All(["--model", "--workers", "--port", "--ready-timeout", "--data-dir", "redis-server", "Ctrl-C"], text => Assert.Contains(text, output));
    }

    private static void KillQuietly(int pid)
    {
        try
        {
            System.Diagnostics.Process.GetProcessById(pid).Kill(entireProcessTree: true);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // Already gone.
        }
    }

    [GeneratedRegex(@"(?m)^started \S+ \(pid (\d+)\)")]
    private static partial Regex Started();
}
