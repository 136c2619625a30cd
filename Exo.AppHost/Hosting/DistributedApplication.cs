using System.Diagnostics;

namespace Exo.AppHost.Hosting;

/// <summary>
/// Runs the resources: wave by wave in dependency order, each wave started together and waited on until healthy, then
/// keeps them running until asked to stop or until one of them dies; either way every process tree is killed.
/// </summary>
public sealed class DistributedApplication
{
    private readonly ConsoleLog _log;
    private readonly TimeSpan _healthTimeout;
    private readonly List<Func<CancellationToken, Task>> _onHealthy = [];

    internal DistributedApplication(IReadOnlyList<Resource> resources, ConsoleLog log, TimeSpan healthTimeout)
    {
        StartWaves = OrderInWaves(resources);
        _log = log;
        _healthTimeout = healthTimeout;
        _log.SetResources(resources.Select(r => r.Name));
    }

    /// <summary>Wave i holds the resources whose longest chain of waits has i links; a wave starts when the one before is healthy.</summary>
    public IReadOnlyList<IReadOnlyList<Resource>> StartWaves { get; }

    /// <summary>Runs <paramref name="callback"/> once every resource is healthy; its token is cancelled when the application stops.</summary>
    public void OnAllHealthy(Func<CancellationToken, Task> callback) => _onHealthy.Add(callback);

    /// <summary>Runs until <paramref name="stop"/> is cancelled (exit code 0) or a resource dies or never gets healthy (1).</summary>
    public async Task<int> RunAsync(CancellationToken stop)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(stop);
        // Per wave, so that they are stopped in reverse: dependents first, and nothing logs that its dependency vanished.
        var processes = new List<List<(Resource Resource, Process Process)>>();
        string? failure = null;

        void Fail(string message)
        {
            // Only the first cause is reported: what dies while everything is being stopped is not news.
            if (stopping.IsCancellationRequested) return;
            Interlocked.CompareExchange(ref failure, message, null);
            stopping.Cancel();
        }

        var callbacks = new List<Task>();
        try
        {
            foreach (var wave in StartWaves)
            {
                var started = new List<(Resource Resource, Process Process)>();
                processes.Add(started);
                foreach (var resource in wave)
                {
                    var process = Start(resource, Fail);
                    started.Add((resource, process));
                    _log.Info($"started {resource.Name} (pid {process.Id}){Describe(resource)}");
                }

                await Task.WhenAll(wave.Select(r => WaitHealthyAsync(r, stopping.Token)));
            }

            _log.Info("all resources are healthy");
            callbacks.AddRange(_onHealthy.Select(callback => Task.Run(() => RunCallbackAsync(callback, stopping.Token), CancellationToken.None)));
            await Task.Delay(Timeout.Infinite, stopping.Token);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Asked to stop, or a resource failed and said so through Fail.
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            Fail(e.Message);
        }
        finally
        {
            await stopping.CancelAsync();
            for (var i = processes.Count - 1; i >= 0; i--) await Task.WhenAll(processes[i].Select(p => StopAsync(p.Process, graceful: p.Resource is ProjectResource)));
            await Task.WhenAll(callbacks);
        }

        if (failure is null)
        {
            _log.Info("stopped");
            return 0;
        }

        _log.Error(failure + "; everything was stopped");
        return 1;
    }

    private async Task RunCallbackAsync(Func<CancellationToken, Task> callback, CancellationToken cancellationToken)
    {
        try
        {
            await callback(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The application is stopping.
        }
        catch (Exception e)
        {
            // A watcher's failure is reported but does not bring the running resources down.
            _log.Warning($"after start: {e.Message}");
        }
    }

    private static string Describe(Resource resource) =>
        resource.Endpoints.Count == 0 ? "" : " on " + string.Join(", ", resource.Endpoints.Select(e => $"{e.Name} {e.Host}:{e.Port}"));

    private Process Start(Resource resource, Action<string> fail)
    {
        var command = resource.Command;
        var start = new ProcessStartInfo(command.FileName)
        {
            WorkingDirectory = command.WorkingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in command.Arguments) start.ArgumentList.Add(argument);
        // The AppHost's own environment is inherited (OTEL_EXPORTER_OTLP_ENDPOINT among it), the wiring goes on top.
        foreach (var (name, value) in resource.ResolveEnvironment()) start.Environment[name] = value;

        var process = Process.Start(start) ?? throw new InvalidOperationException($"{resource.Name} could not be started");
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) _log.Resource(resource.Name, e.Data, isError: false); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) _log.Resource(resource.Name, e.Data, isError: true); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _ = WatchAsync();
        return process;

        async Task WatchAsync()
        {
            // WaitForExitAsync also waits for the last output lines, so the death is reported after them.
            await process.WaitForExitAsync(CancellationToken.None);
            fail($"{resource.Name} (pid {process.Id}) exited with code {process.ExitCode}");
        }
    }

    private async Task WaitHealthyAsync(Resource resource, CancellationToken cancellationToken)
    {
        if (resource.HealthCheck is not { } healthy) return;
        var deadline = Stopwatch.StartNew();
        while (!await healthy(cancellationToken))
        {
            if (deadline.Elapsed > _healthTimeout)
            {
                throw new TimeoutException($"{resource.Name} did not become healthy within {_healthTimeout.TotalSeconds:0} s");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
        }

        _log.Info($"{resource.Name} is healthy ({deadline.Elapsed.TotalSeconds:0.0} s)");
    }

    /// <summary>How long a service gets to stop on SIGTERM (a worker deregisters, streams close) before it is killed.</summary>
    private static readonly TimeSpan GracePeriod = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Stops a process and everything it started. Exo's services get SIGTERM and a grace period first (they start no
    /// children of their own); other executables are killed with their tree at once, since a shell that exits on
    /// SIGTERM would orphan its children beyond the reach of a tree kill.
    /// </summary>
    private static async Task StopAsync(Process process, bool graceful)
    {
        try
        {
            if (graceful && !process.HasExited && SendSignal(process.Id, SigTerm) == 0)
            {
                using var grace = new CancellationTokenSource(GracePeriod);
                await process.WaitForExitAsync(grace.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // It did not stop in time: killed below.
        }

        try
        {
            // The whole tree: a service that started helpers of its own must not leave them behind.
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It had already exited.
        }

        // Not disposed: its watcher may still be reading its exit code.
        await process.WaitForExitAsync(CancellationToken.None);
    }

    private const int SigTerm = 15;

    // DllImport rather than LibraryImport: its generated code would need unsafe blocks, for one blittable call.
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    private static List<IReadOnlyList<Resource>> OrderInWaves(IReadOnlyList<Resource> resources)
    {
        var depth = new Dictionary<Resource, int>();
        var visiting = new HashSet<Resource>();

        int DepthOf(Resource resource)
        {
            if (depth.TryGetValue(resource, out var known)) return known;
            if (!resources.Contains(resource)) throw new InvalidOperationException($"'{resource.Name}' is waited for but is not part of the application");
            if (!visiting.Add(resource)) throw new InvalidOperationException($"resources wait for each other in a cycle through '{resource.Name}'");
            var d = resource.WaitsFor.Count == 0 ? 0 : resource.WaitsFor.Max(DepthOf) + 1;
            visiting.Remove(resource);
            depth[resource] = d;
            return d;
        }

        foreach (var resource in resources) DepthOf(resource);
        // Within a wave, the order the resources were added in.
        return resources.GroupBy(r => depth[r]).OrderBy(g => g.Key).Select(g => (IReadOnlyList<Resource>)g.ToList()).ToList();
    }
}
