namespace Exo.AppHost.Hosting;

/// <summary>
/// The AppHost's console: every resource's lines behind a padded, coloured prefix (<c>registry | ...</c>) and the AppHost's
/// own messages unprefixed, one whole line at a time so that lines from different processes never interleave.
/// </summary>
public sealed class ConsoleLog(TextWriter output, TextWriter error, bool colour)
{
    // Red is left out: it is kept for the AppHost's errors.
    private static readonly string[] Colours = ["36", "32", "33", "35", "34", "96", "92", "93", "95", "94"];
    private readonly Dictionary<string, string> _prefixes = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>Colours when stdout is a terminal and NO_COLOR (no-color.org) is not set.</summary>
    public static ConsoleLog ForConsole() =>
        new(Console.Out, Console.Error, !Console.IsOutputRedirected && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR")));

    /// <summary>Fixes the prefixes: names padded to the longest, colours in the order given.</summary>
    public void SetResources(IEnumerable<string> names)
    {
        var list = names.ToList();
        var width = list.Count == 0 ? 0 : list.Max(n => n.Length);
        lock (_lock)
        {
            _prefixes.Clear();
            for (var i = 0; i < list.Count; i++)
            {
                var text = $"{list[i].PadRight(width)} |";
                _prefixes[list[i]] = (colour ? $"\e[{Colours[i % Colours.Length]}m{text}\e[0m" : text) + " ";
            }
        }
    }

    public string Prefix(string resource)
    {
        lock (_lock) return _prefixes.TryGetValue(resource, out var prefix) ? prefix : $"{resource} | ";
    }

    /// <summary>A line a resource wrote, to stdout or stderr as the resource did.</summary>
    public void Resource(string resource, string line, bool isError)
    {
        var prefix = Prefix(resource);
        lock (_lock) (isError ? error : output).WriteLine(prefix + line);
    }

    public void Info(string message)
    {
        lock (_lock) output.WriteLine(message);
    }

    public void Warning(string message)
    {
        lock (_lock) error.WriteLine(colour ? $"\e[33mwarning:\e[0m {message}" : $"warning: {message}");
    }

    public void Error(string message)
    {
        lock (_lock) error.WriteLine(colour ? $"\e[31merror:\e[0m {message}" : $"error: {message}");
    }
}
