using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Exo.Gateway.Tests;

/// <summary>A real gateway process on a free loopback port, stopped when the tests are done.</summary>
public sealed partial class GatewayProcess : IDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _log = new();

    public GatewayProcess(params string[] settings)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Exo.Gateway.dll"));
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add("http://127.0.0.1:0");
        foreach (var s in settings) start.ArgumentList.Add(s);
        start.Environment["Logging__LogLevel__Default"] = "Information";
        _process = Process.Start(start)!;

        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(object _, DataReceivedEventArgs e)
        {
            if (e.Data is null) return;
            lock (_log) _log.AppendLine(e.Data);
            if (ListeningLine().Match(e.Data) is { Success: true } m) listening.TrySetResult(new Uri(m.Groups[1].Value));
        }

        _process.OutputDataReceived += OnLine;
        _process.ErrorDataReceived += OnLine;
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        _process.EnableRaisingEvents = true;
        _process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException($"the gateway exited early:\n{Log}"));
        if (!listening.Task.Wait(TimeSpan.FromSeconds(60))) throw new TimeoutException($"the gateway did not start listening:\n{Log}");
        BaseAddress = listening.Task.Result;
    }

    public Uri BaseAddress { get; }

    public Uri V1 => new(BaseAddress, "/v1");

    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    public static string Model(string name) => name == "exo-tiny"
        ? Path.Combine(RepositoryRoot(), "models", "exo-tiny")
        : Path.GetFullPath(Path.Combine(RepositoryRoot(), "..", "shared", "fixtures", name));

    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Exo.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException("no Exo.sln above the test folder");
    }

    public void Dispose()
    {
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

/// <summary>One gateway serving the shipped model and a fixture, shared by a test class.</summary>
public sealed class GatewayFixture : IDisposable
{
    public GatewayProcess Gateway { get; } = new(
        "--Gateway:Models:0=" + GatewayProcess.Model("exo-tiny"),
        "--Gateway:Models:1=" + GatewayProcess.Model("qwen2-tiny"),
        "--Gateway:MaxConcurrentRequests=4");

    public void Dispose() => Gateway.Dispose();
}
