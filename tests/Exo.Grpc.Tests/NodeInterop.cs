using System.Diagnostics;
using System.Threading.Channels;

namespace Exo.Grpc.Tests;

/// <summary>Runs the grpc-js peer in interop/ as real node processes.</summary>
public static class NodeInterop
{
    public static string Directory { get; } = FindInteropDirectory();

    /// <summary>Runs one client.js scenario against <paramref name="address"/>; returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output)> RunClientAsync(string address, string scenario)
    {
        using var process = Start("client.js", HostPort(address), scenario);
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"grpc-js scenario '{scenario}' did not finish in 60 s.");
        }

        return (process.ExitCode, await output + await errors);
    }

    public static string HostPort(string address) => new Uri(address).Authority;

    public static Process Start(string script, params string[] args)
    {
        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = Directory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(script);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start) ?? throw new InvalidOperationException("Could not start node.");
    }

    private static string FindInteropDirectory()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Exo.sln")))
        {
            dir = dir.Parent;
        }

        if (dir is null)
        {
            throw new InvalidOperationException($"Exo.sln not found above {AppContext.BaseDirectory}.");
        }

        var interop = Path.Combine(dir.FullName, "tests", "Exo.Grpc.Tests", "interop");
        if (!File.Exists(Path.Combine(interop, "node_modules", "@grpc", "grpc-js", "package.json"))
            || !File.Exists(Path.Combine(interop, "node_modules", "@grpc", "proto-loader", "package.json")))
        {
            throw new InvalidOperationException(
                $"The grpc-js interop peer is not installed: run `npm ci` in {interop} (.ci/run does this before the tests).");
        }

        return interop;
    }
}

/// <summary>A grpc-js echo server (interop/server.js) on a free port; its stdout lines are kept for the tests to wait on.</summary>
public sealed class NodeServerFixture : IAsyncLifetime
{
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private Process _process = null!;

    public string Address { get; private set; } = "";

    public async Task InitializeAsync()
    {
        _process = NodeInterop.Start("server.js", "0");
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _lines.Writer.TryWrite(e.Data);
            }
        };
        _process.BeginOutputReadLine();
        var first = await WaitForLineAsync(l => l.StartsWith("listening ", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        Address = "http://127.0.0.1:" + first["listening ".Length..];
    }

    /// <summary>Waits for a stdout line matching <paramref name="match"/>, skipping the others.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            var line = await _lines.Reader.ReadAsync(cts.Token);
            if (match(line))
            {
                return line;
            }
        }
    }

    public Task DisposeAsync()
    {
        // Closing stdin asks server.js to exit; kill it if it does not.
        _process.StandardInput.Close();
        if (!_process.WaitForExit(3000))
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
        return Task.CompletedTask;
    }
}
