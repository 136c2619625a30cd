namespace Exo.AppHost.Tests;

/// <summary>The processes an AppHost run owns: its descendants and those of the DCP servers it started to watch it.</summary>
internal static class ProcessTree
{
    /// <summary>
    /// Every live process below <paramref name="apphost"/>, including DCP's, which detaches but names the AppHost in its
    /// <c>--monitor PID</c> argument, and everything DCP started (the services, Redis, their <c>dotnet run</c> hosts).
    /// </summary>
    public static HashSet<int> Of(int apphost)
    {
        var parents = new Dictionary<int, int>();
        var roots = new HashSet<int> { apphost };
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                // The parent pid is the 4th field of stat, after "pid (comm) state", where comm may hold spaces.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                parents[pid] = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
                var command = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                var monitor = Array.IndexOf(command, "--monitor");
                if (monitor >= 0 && monitor + 1 < command.Length && command[monitor + 1] == apphost.ToString()) roots.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                // It ended while we looked.
            }
        }

        var tree = new HashSet<int>(roots);
        for (var grew = true; grew;)
        {
            grew = false;
            foreach (var (pid, parent) in parents)
            {
                if (tree.Contains(parent) && tree.Add(pid)) grew = true;
            }
        }

        return tree;
    }

    /// <summary>The live processes among <paramref name="pids"/> that run <paramref name="program"/> (the file name of argv[0]).</summary>
    public static List<int> Running(IEnumerable<int> pids, string program) =>
        [.. pids.Where(pid => ProcessChecks.IsRunning(pid) && Program(pid) == program)];

    /// <summary>A process's environment variable, or null (gone, unreadable, unset).</summary>
    public static string? Environment(int pid, string name)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/environ").Split('\0').FirstOrDefault(v => v.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string? Program(int pid)
    {
        try
        {
            // Redis rewrites its title into argv[0] ("redis-server 127.0.0.1:6379"): the program is its first word.
            return Path.GetFileName(File.ReadAllText($"/proc/{pid}/cmdline").Split('\0')[0].Split(' ')[0]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
