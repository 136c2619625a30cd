using System.Text.RegularExpressions;
using Exo.AppHost.Hosting;

namespace Exo.AppHost.Tests;

/// <summary>The orchestrator with real (small) processes: health waits, a dying child, stopping whole process trees.</summary>
public sealed partial class DistributedApplicationTests
{
    private readonly StringWriter _output = new();
    private readonly StringWriter _error = new();
    private readonly TextWriter _syncOutput;
    private readonly TextWriter _syncError;

    public DistributedApplicationTests()
    {
        // A synchronized writer locks itself, so reading under that lock never sees a half-written line.
        _syncOutput = TextWriter.Synchronized(_output);
        _syncError = TextWriter.Synchronized(_error);
    }

    private ConsoleLog Log() => new(_syncOutput, _syncError, colour: false);

    private static ResourceBuilder<ExecutableResource> Shell(DistributedApplicationBuilder app, string name, string script) =>
        app.AddExecutable(name, "/bin/sh", Path.GetTempPath(), "-c", script);

    private string Output
    {
        get { lock (_syncOutput) return _output.ToString(); }
    }

    private string Error
    {
        get { lock (_syncError) return _error.ToString(); }
    }

    /// <summary>The pids the application started and those the scripts printed as "pid N".</summary>
    private List<int> Pids() => [.. PidLine().Matches(Output + Error).Select(m => int.Parse(m.Groups[1].Value)).Distinct()];

    [Fact]
    public async Task AChildThatDiesStopsEverythingAndIsNamed()
    {
        var app = new DistributedApplicationBuilder();
        Shell(app, "sleeper", "sleep 60");
        Shell(app, "crasher", "echo going down; sleep 0.5; exit 3");

        var exitCode = await app.Build(Log()).RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(1, exitCode);
        Assert.Contains("crasher | going down", Output);
        Assert.Matches(@"error: crasher \(pid \d+\) exited with code 3; everything was stopped", Error);
        Assert.DoesNotContain("sleeper (pid", Error);
        var pids = Pids();
        Assert.Equal(2, pids.Count);
        Assert.All(pids, pid => Assert.False(ProcessChecks.IsRunning(pid), $"pid {pid} still runs"));
    }

    [Fact]
    public async Task StoppingKillsGrandchildrenTooAndExitsZero()
    {
        var app = new DistributedApplicationBuilder();
        // The shell starts a grandchild and says its pid; the grandchild must die with it.
        Shell(app, "parent", "sleep 60 & echo pid $!; wait");
        using var stop = new CancellationTokenSource();

        var run = app.Build(Log()).RunAsync(stop.Token);
        Assert.True(ProcessChecks.Eventually(() => Pids().Count == 2, TimeSpan.FromSeconds(10)), Output);
        var pids = Pids();
        Assert.All(pids, pid => Assert.True(ProcessChecks.IsRunning(pid)));
        await stop.CancelAsync();

        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.All(pids, pid => Assert.False(ProcessChecks.IsRunning(pid), $"pid {pid} still runs"));
        Assert.Equal("", Error);
    }

    [Fact]
    public async Task DependentsStartOnlyOnceTheirDependencyIsHealthy()
    {
        var marker = Path.Combine(Path.GetTempPath(), $"exo-apphost-{Guid.NewGuid():N}");
        try
        {
            var app = new DistributedApplicationBuilder();
            // Healthy once it has written the marker, a second after starting.
            var slow = Shell(app, "slow", $"sleep 1; touch {marker}; sleep 60").WithHealthCheck(_ => Task.FromResult(File.Exists(marker)));
            // Fails (and so fails the application) if it starts before the marker exists.
            Shell(app, "dependent", $"test -f {marker} && echo saw marker; sleep 60").WaitFor(slow);
            using var stop = new CancellationTokenSource();

            var run = app.Build(Log()).RunAsync(stop.Token);
            Assert.True(ProcessChecks.Eventually(() => Output.Contains("dependent | saw marker"), TimeSpan.FromSeconds(20)), Output + Error);
            await stop.CancelAsync();

            Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Matches(@"slow is healthy \(\d+\.\d s\)", Output);
            Assert.True(Output.IndexOf("slow is healthy", StringComparison.Ordinal) < Output.IndexOf("started dependent", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(marker);
        }
    }

    [Fact]
    public async Task HealthyCallbacksRunOnceAllIsUpAndAreCancelledOnStopAndTheirFailuresAreOnlyWarnings()
    {
        var app = new DistributedApplicationBuilder();
        Shell(app, "svc", "sleep 60");
        var application = app.Build(Log());
        var watching = new TaskCompletionSource();
        var cancelled = false;
        application.OnAllHealthy(async token =>
        {
            watching.SetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, token);
            }
            finally
            {
                cancelled = token.IsCancellationRequested;
            }
        });
        application.OnAllHealthy(_ => throw new InvalidOperationException("watcher broke"));
        using var stop = new CancellationTokenSource();

        var run = application.RunAsync(stop.Token);
        await watching.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("all resources are healthy", Output);
        await stop.CancelAsync();

        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(cancelled);
        Assert.Equal($"warning: after start: watcher broke{Environment.NewLine}", Error);
    }

    [Fact]
    public async Task AResourceThatNeverGetsHealthyFailsTheApplication()
    {
        var app = new DistributedApplicationBuilder { HealthTimeout = TimeSpan.FromSeconds(1) };
        Shell(app, "stuck", "sleep 60").WithHealthCheck(_ => Task.FromResult(false));
        Shell(app, "never", "echo should not start").WaitFor(app.AddExecutable("x", "/bin/sleep", Path.GetTempPath(), "60"));

        var exitCode = await app.Build(Log()).RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(1, exitCode);
        Assert.Contains("error: stuck did not become healthy within 1 s; everything was stopped", Error);
        Assert.DoesNotContain("should not start", Output);
        Assert.All(Pids(), pid => Assert.False(ProcessChecks.IsRunning(pid), $"pid {pid} still runs"));
    }

    [GeneratedRegex(@"pid (\d+)")]
    private static partial Regex PidLine();
}
