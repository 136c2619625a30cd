namespace Exo.Hub;

/// <summary>
/// A model named as a folder or as <c>ORG/NAME[@REVISION]</c> (the AppHost's <c>--model</c>): one that is not a folder here
/// is pulled from the Hugging Face Hub into the cache (as <c>exo models pull</c> does) and served from its link there.
/// Workers on other machines then copy their layers from this machine's workers, so the hub is read once per cluster.
/// </summary>
public static class HubModels
{
    private static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(2);

    /// <summary>The folder to serve: <paramref name="model"/> itself when it is a folder (or not a repository id), else the pulled snapshot.</summary>
    /// <exception cref="ModelDownloadException">The pull failed; the message says why.</exception>
    public static async Task<string?> ResolveAsync(string? model, ModelCache cache, HubOptions options, TextWriter log, CancellationToken cancellationToken)
    {
        if (model is null || Directory.Exists(model) || Repository(model) is not { } reference) return model;
        using var http = HubHttp.CreateClient();
        var hub = new HubSource(http, options, reference);
        log.WriteLine($"{model} is not a folder here: pulling it from {hub.Name} into {cache.Home}");
        var progress = new ThrottledProgress(ProgressEvery, p => log.WriteLine($"pulling {reference}: {p.Done / 1e6:0.0} of {p.Total / 1e6:0.0} MB"));
        try
        {
            var pulled = await cache.PullAsync(reference, hub, [], new ModelDownloader(), progress, cancellationToken);
            log.WriteLine($"pulled {reference} at {pulled.Commit[..Math.Min(12, pulled.Commit.Length)]} into {pulled.Snapshot}");
            return pulled.Link;
        }
        catch (Exception e) when (e is ModelSourceException or DiskFullException or IOException or UnauthorizedAccessException)
        {
            throw new ModelDownloadException(e.Message);
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
}
