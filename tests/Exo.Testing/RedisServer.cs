using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace Exo.Testing;

/// <summary>
/// A real redis-server on a free loopback port for the duration of the test collection, with nothing persisted unless
/// it is given a <see cref="DataDirectory"/>.
/// </summary>
public sealed class RedisServer : IAsyncLifetime
{
    private Process? _process;

    public int Port { get; private set; }

    /// <summary>Where it keeps an append-only file, as the AppHost's Redis does; null keeps nothing.</summary>
    public string? DataDirectory { get; init; }

    /// <summary>A StackExchange.Redis configuration string for this server.</summary>
    public string Configuration => $"127.0.0.1:{Port}";

    public async Task InitializeAsync()
    {
        Port = Ports.Free();
        await StartAsync();
    }

    /// <summary>
    /// Stops the server and starts it again on the same port: shut down cleanly keeping its data (which needs a
    /// <see cref="DataDirectory"/>), or killed and started with nothing, as after a lost volume or a replaced machine.
    /// </summary>
    public async Task RestartAsync(bool keepData)
    {
        var process = _process ?? throw new InvalidOperationException("the server was never started");
        if (keepData) ServiceProcess.Signal(process.Id, ServiceProcess.SigTerm);
        else process.Kill();
        await process.WaitForExitAsync();
        process.Dispose();
        if (!keepData && DataDirectory is not null && Directory.Exists(DataDirectory)) Directory.Delete(DataDirectory, recursive: true);
        await StartAsync();
    }

    private async Task StartAsync()
    {
        var executable = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(dir => Path.Combine(dir, "redis-server")).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("redis-server is not on PATH; install it (Debian: apt-get install -y redis-server), as .ci/run does");

        var start = new ProcessStartInfo(executable)
        {
            ArgumentList = { "--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (DataDirectory is not null) Directory.CreateDirectory(DataDirectory);
        string[] persistence = DataDirectory is null ? ["--appendonly", "no"] : ["--dir", DataDirectory, "--appendonly", "yes", "--appendfsync", "everysec"];
        foreach (var arg in persistence) start.ArgumentList.Add(arg);

        _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start");
        var output = new StringBuilder();
        _process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!await AnswersPing())
        {
            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                lock (output) throw new InvalidOperationException($"redis-server on port {Port} did not come up:\n{output}");
            }

            await Task.Delay(50);
        }
    }

    private async Task<bool> AnswersPing()
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, Port);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray());
            var buffer = new byte[16];
            var read = await stream.ReadAsync(buffer);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public async Task DisposeAsync()
    {
        if (_process is null) return;
        if (!_process.HasExited) _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
