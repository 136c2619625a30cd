namespace Exo.Hub;

/// <summary>
/// Downloads a model's files into a folder from sources in order of preference (peers first, the hub last): several
/// files at once, each into FILE.partial, resumed by Range after a dropped connection or an interrupted run, checked
/// against its SHA-256 or git blob id, then renamed into place, so that a file under its own name is always complete.
/// A source that fails for a file hands it to the next; when none is left the error names each one and why.
/// </summary>
public sealed class ModelDownloader(DownloadOptions options)
{
    public const string PartialSuffix = ".partial";

    public ModelDownloader() : this(new DownloadOptions())
    {
    }

    public DownloadOptions Options => options;

    /// <param name="sources">Where to read from, most preferred first.</param>
    /// <param name="destination">The model folder to fill.</param>
    /// <param name="progress">Told of every chunk written.</param>
    /// <param name="expected">
    /// The listing every file must match (the hub's, at the commit being pulled); when null, the first source that
    /// lists the model sets it.
    /// </param>
    public Task<DownloadResult> DownloadAsync(IReadOnlyList<IModelSource> sources, string destination, IProgress<DownloadProgress>? progress,
        CancellationToken cancellationToken, ModelListing? expected = null)
    {
        if (sources.Count == 0) throw new ArgumentException("give at least one source (a peer or the hub)", nameof(sources));
        return new DownloadRun(options, sources, Path.GetFullPath(destination), progress).RunAsync(expected, cancellationToken);
    }
}
