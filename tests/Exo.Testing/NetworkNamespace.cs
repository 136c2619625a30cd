using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;

namespace Exo.Testing;

/// <summary>
/// A Linux network namespace made for one test (needs root and iproute2's <c>ip</c>), so that a test can multicast, use
/// well-known ports (mDNS's 5353) and see only its own processes without touching the machine's real interfaces.
/// It starts with loopback up, multicast on, and the IPv4 multicast range (224.0.0.0/4) routed there: every multicast
/// packet sent inside stays inside and is heard by every process inside that joined the group.
/// <para>
/// Run processes inside with <see cref="Start"/> (a <see cref="ServiceProcess"/>, log captured as usual) or
/// <see cref="RunAsync"/> (a command to its end, e.g. a probe such as <c>curl</c>). The test process itself stays
/// outside: it reads what happens inside from those processes' output, or, to talk to servers inside over the network,
/// calls <see cref="ConnectAsync"/> for a veth pair with an address on each side (servers inside must then listen on
/// 0.0.0.0 or the inside address, not on 127.0.0.1). Disposing kills whatever still runs inside and deletes the namespace;
/// namespaces that a crashed test run left behind are removed by the next <see cref="CreateAsync"/>.
/// </para>
/// </summary>
public sealed class NetworkNamespace : IAsyncDisposable
{
    private const string Prefix = "exo-test-";
    private string? _outsideLink;

    private NetworkNamespace(string name) => Name = name;

    public string Name { get; }

    /// <summary>The command that runs the rest inside the namespace (for <see cref="ServiceProcess.Start"/>'s launcher).</summary>
    public IReadOnlyList<string> Launcher => ["ip", "netns", "exec", Name];

    public static async Task<NetworkNamespace> CreateAsync(CancellationToken cancellationToken = default)
    {
        await RemoveStaleAsync(cancellationToken);
        var space = new NetworkNamespace($"{Prefix}{Environment.ProcessId}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant()}");
        try
        {
            await RunToEndAsync(["ip", "netns", "add", space.Name], cancellationToken);
            await space.RunAsync(cancellationToken, "ip", "link", "set", "lo", "up", "multicast", "on");
            await space.RunAsync(cancellationToken, "ip", "route", "add", "224.0.0.0/4", "dev", "lo");
            return space;
        }
        catch
        {
            await space.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts one of the project's assemblies inside the namespace.</summary>
    public ServiceProcess Start(string assembly, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null) =>
        ServiceProcess.Start(assembly, args, environment, Launcher);

    /// <summary>Runs a command inside the namespace to its end and returns what it printed; a failure throws with its error output.</summary>
    public Task<string> RunAsync(CancellationToken cancellationToken, params string[] command) => RunToEndAsync([.. Launcher, .. command], cancellationToken);

    /// <summary>
    /// Links the namespace to the test process's network by a veth pair on a /30 of its own: the test reaches servers
    /// inside at <c>Inside</c>, they reach it at <c>Outside</c>. Once per namespace.
    /// </summary>
    public async Task<(IPAddress Outside, IPAddress Inside)> ConnectAsync(CancellationToken cancellationToken = default)
    {
        if (_outsideLink is not null) throw new InvalidOperationException($"{Name} is connected already");
        var tag = Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();
        // 10.201.0.0/16 in /30 blocks, chosen at random: parallel tests seldom meet, and a clash fails loudly below.
        var block = RandomNumberGenerator.GetInt32(1 << 14) * 4;
        var (outside, inside) = (new IPAddress([10, 201, (byte)(block >> 8), (byte)(block + 1)]), new IPAddress([10, 201, (byte)(block >> 8), (byte)(block + 2)]));
        _outsideLink = $"exo{tag}o";
        var insideLink = $"exo{tag}i";
        await RunToEndAsync(["ip", "link", "add", _outsideLink, "type", "veth", "peer", "name", insideLink, "netns", Name], cancellationToken);
        await RunToEndAsync(["ip", "addr", "add", $"{outside}/30", "dev", _outsideLink], cancellationToken);
        await RunToEndAsync(["ip", "link", "set", _outsideLink, "up"], cancellationToken);
        await RunAsync(cancellationToken, "ip", "addr", "add", $"{inside}/30", "dev", insideLink);
        await RunAsync(cancellationToken, "ip", "link", "set", insideLink, "up");
        return (outside, inside);
    }

    public async ValueTask DisposeAsync()
    {
        await RemoveAsync(Name, CancellationToken.None);
        // Deleting the namespace deletes the inside end, and with it the pair; this is for a process still holding it.
        if (_outsideLink is not null) await TryRunAsync(["ip", "link", "delete", _outsideLink]);
    }

    private static async Task RemoveAsync(string name, CancellationToken cancellationToken)
    {
        var pids = await TryRunAsync(["ip", "netns", "pids", name]);
        foreach (var line in pids.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (int.TryParse(line, out var pid)) ServiceProcess.Signal(pid, ServiceProcess.SigKill);
        }

        await RunToEndAsync(["ip", "netns", "delete", name], cancellationToken);
    }

    /// <summary>Namespaces of test processes that are gone (killed before they could clean up).</summary>
    private static async Task RemoveStaleAsync(CancellationToken cancellationToken)
    {
        foreach (var line in (await RunToEndAsync(["ip", "netns", "list"], cancellationToken)).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var name = line.Split(' ')[0];
            if (!name.StartsWith(Prefix, StringComparison.Ordinal) || !int.TryParse(name[Prefix.Length..].Split('-')[0], out var pid)) continue;
            if (!Directory.Exists($"/proc/{pid}")) await RemoveAsync(name, cancellationToken);
        }
    }

    private static async Task<string> TryRunAsync(string[] command)
    {
        try
        {
            return await RunToEndAsync(command, CancellationToken.None);
        }
        catch (InvalidOperationException)
        {
            return "";
        }
    }

    private static async Task<string> RunToEndAsync(string[] command, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var part in command.Skip(1)) start.ArgumentList.Add(part);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"cannot run {command[0]} ({e.Message}): network namespaces need iproute2 (apt-get install iproute2) and root", e);
        }

        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var error = process.StandardError.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            return process.ExitCode == 0
                ? await output
                : throw new InvalidOperationException($"'{string.Join(' ', command)}' failed ({process.ExitCode}): {(await error).Trim()}");
        }
    }
}
