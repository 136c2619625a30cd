using Exo.Hub;

namespace Exo.AppHost;

/// <summary>
/// <c>--model ORG/NAME[@REVISION]</c>: a model that is not a folder here is pulled from the Hugging Face Hub into
/// EXO_HOME (as <c>exo models pull</c> does, a pulled revision kept and not fetched again), and served from there.
/// Workers on other machines then copy their layers from this machine's workers, so the hub is read once per cluster.
/// </summary>
public static class HubModels
{
    private static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(2);

    /// <summary>The folder to serve: <paramref name="model"/> itself when it is a folder (or not a repository id), else the pulled snapshot.</summary>
    public static async Task<string?> ResolveAsync(string? model, CancellationToken cancellationToken)
    {
        if (model is null || Directory.Exists(model) || Repository(model) is not { } reference) return model;
        var cache = new ModelCache(ModelCache.DefaultHome());
        using var http = HubHttp.CreateClient();
        var hub = new HubSource(http, HubOptions.FromEnvironment(), reference);
        Console.WriteLine($"{model} is not a folder here: pulling it from {hub.Name} into {cache.Home}");
        var last = 0L;
        var progress = new Reporter(p =>
        {
            var now = Environment.TickCount64;
            if (p.Done < p.Total && now - Interlocked.Read(ref last) < ProgressEvery.TotalMilliseconds) return;
            Interlocked.Exchange(ref last, now);
            Console.WriteLine($"pulling {reference}: {p.Done / 1e6:0.0} of {p.Total / 1e6:0.0} MB");
        });
        try
        {
            var pulled = await cache.PullAsync(reference, hub, [], new ModelDownloader(), progress, cancellationToken);
            Console.WriteLine($"pulled {reference} at {pulled.Commit[..Math.Min(12, pulled.Commit.Length)]} into {pulled.Snapshot}");
            return pulled.Link;
        }
        catch (Exception e) when (e is ModelDownloadException or ModelSourceException or DiskFullException or IOException or UnauthorizedAccessException)
        {
            throw new AppHostInputException($"--model {model} is no folder here, and pulling it from the Hugging Face Hub failed: {e.Message}");
        }
    }

    /// <summary>The repository <paramref name="model"/> names, or null when it reads as a path (./x, /x, ~/x, a\\b) or no id at all.</summary>
    private static ModelReference? Repository(string model)
    {
        if (model.Length == 0 || model[0] is '.' or '/' or '~' || model.Contains('\\', StringComparison.Ordinal)) return null;
        try
        {
            return ModelReference.Parse(model);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary>Reports on the thread that reports, unlike <see cref="Progress{T}"/>.</summary>
    private sealed class Reporter(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }
}
