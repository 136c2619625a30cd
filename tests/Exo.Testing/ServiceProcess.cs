using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Exo.Testing;

/// <summary>
/// A real process running one of the project's assemblies (copied beside the tests by a project reference): a
/// service kept running with its log captured and killed with its children on dispose, or a command run to its end.
/// </summary>
public sealed partial class ServiceProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServiceProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += OnLine;
        _process.ErrorDataReceived += OnLine;
        _process.EnableRaisingEvents = true;
        _process.Exited += (_, _) => _listening.TrySetException(new InvalidOperationException($"the process exited early:\n{Log}"));
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    public int Id => _process.Id;

    /// <param name="launcher">A command that runs the rest, e.g. <c>ip netns exec NS</c> (see <see cref="NetworkNamespace"/>); it must exec, not fork, so that signals reach the service.</param>
    public static ServiceProcess Start(string assembly, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null, IReadOnlyList<string>? launcher = null) =>
        new(Process.Start(StartInfo(assembly, args, environment, redirectInput: false, launcher))!);

    /// <summary>The address from ASP.NET's "Now listening on" line, once the server is up.</summary>
    public Uri WaitUntilListening(TimeSpan timeout) =>
        _listening.Task.Wait(timeout) ? _listening.Task.Result : throw new TimeoutException($"the process did not start listening:\n{Log}");

    /// <summary>Waits until the process has written <paramref name="text"/> (its log reaches the console a little after the event).</summary>
    public async Task WaitForLogAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Log.Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the process did not write '{text}' within {timeout}:\n{Log}");
            await Task.Delay(50);
        }
    }

    /// <summary>Waits for a process that should stop by itself (a service refusing to start) and returns its exit code.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) throw new TimeoutException($"the process did not exit within {timeout}:\n{Log}");
        // Without a timeout it also waits until the last line of its output is read.
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>Sends SIGINT, what Ctrl-C sends, and waits for the process to end; returns its exit code.</summary>
    public int Interrupt(TimeSpan timeout)
    {
        if (Kill(_process.Id, SigInt) != 0) throw new InvalidOperationException($"kill({_process.Id}, SIGINT) failed: errno {Marshal.GetLastPInvokeError()}");
        return _process.WaitForExit(timeout) ? _process.ExitCode : throw new TimeoutException($"the process did not stop within {timeout} of SIGINT:\n{Log}");
    }

    public const int SigInt = 2;
    public const int SigKill = 9;
    public const int SigTerm = 15;

    /// <summary>Sends <paramref name="signal"/> to any process; false when it failed (the process is gone, say).</summary>
    public static bool Signal(int pid, int signal) => Kill(pid, signal) == 0;

    // DllImport rather than LibraryImport: its generated code would need unsafe blocks, for one blittable call.
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    /// <summary>Runs a command to its end, feeding <paramref name="input"/> (if any) to its standard input.</summary>
    public static (int ExitCode, string Output, string Error) Run(string assembly, string? input, params string[] args)
    {
        using var process = Process.Start(StartInfo(assembly, args, null, redirectInput: input is not null, launcher: null))!;
        var error = process.StandardError.ReadToEndAsync();
        if (input is not null)
        {
            process.StandardInput.Write(input);
            process.StandardInput.Close();
        }

        var output = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(120_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{assembly} {string.Join(' ', args)} did not finish in 2 minutes");
        }

        return (process.ExitCode, output, error.Result);
    }

    private static ProcessStartInfo StartInfo(
        string assembly, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment, bool redirectInput, IReadOnlyList<string>? launcher)
    {
        string[] command = [.. launcher ?? [], "dotnet", Path.Combine(AppContext.BaseDirectory, assembly)];
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = redirectInput };
        foreach (var part in command.Skip(1)) start.ArgumentList.Add(part);
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;
        return start;
    }

    private void OnLine(object sender, DataReceivedEventArgs e)
    {
        if (e.Data is null) return;
        lock (_log) _log.AppendLine(e.Data);
        if (ListeningLine().Match(e.Data) is { Success: true } match) _listening.TrySetResult(new Uri(match.Groups[1].Value));
    }

    private bool _disposed;

    public bool HasExited => _disposed || _process.HasExited;

    /// <summary>Asks the process to stop as a service manager would (SIGTERM), and waits for it to exit.</summary>
    public bool Terminate(TimeSpan timeout)
    {
        if (_process.HasExited) return true;
        if (Kill(_process.Id, SigTerm) != 0) throw new InvalidOperationException($"kill({_process.Id}, SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}");
        return _process.WaitForExit(timeout);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    [GeneratedRegex(@"Now listening on: (http://\S+)")]
    private static partial Regex ListeningLine();
}
