using Exo.Hub;
using Spectre.Console;

namespace Exo.Cli.Commands;

/// <summary>
/// A pull's progress on the terminal: a bar per file and one for the total (Spectre.Console), or, when the output is
/// redirected, one plain line as each file is finished.
/// </summary>
internal static class PullDisplay
{
    public static async Task<T> RunAsync<T>(Func<IProgress<DownloadProgress>, Task<T>> pull)
    {
        if (Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive) return await pull(new Lines());
        T result = default!;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async context => result = await pull(new Bars(context)));
        return result;
    }

    /// <summary>Reports on the caller's thread, in order (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    private sealed class Bars(ProgressContext context) : IProgress<DownloadProgress>
    {
        private readonly Lock _gate = new();
        private readonly Dictionary<string, ProgressTask> _files = new(StringComparer.Ordinal);
        private ProgressTask? _total;

        public void Report(DownloadProgress value)
        {
            lock (_gate)
            {
                _total ??= context.AddTask("[bold]total[/]");
                _total.MaxValue = Math.Max(1, value.Total);
                _total.Value = value.Done;
                if (!_files.TryGetValue(value.File, out var task))
                {
                    task = context.AddTaskBefore(Markup.Escape(value.File), _total);
                    _files.Add(value.File, task);
                }

                task.MaxValue = Math.Max(1, value.FileTotal);
                task.Value = value.FileDone;
            }
        }
    }

    private sealed class Lines : IProgress<DownloadProgress>
    {
        private readonly Lock _gate = new();
        private readonly HashSet<string> _finished = new(StringComparer.Ordinal);

        public void Report(DownloadProgress value)
        {
            lock (_gate)
            {
                if (value.FileDone < value.FileTotal || !_finished.Add(value.File)) return;
                Console.WriteLine($"{value.File}: {ModelsCommand.Size(value.FileTotal)} ({value.Done * 100 / Math.Max(1, value.Total)}% of {ModelsCommand.Size(value.Total)})");
            }
        }
    }
}
