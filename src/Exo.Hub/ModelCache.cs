namespace Exo.Hub;

/// <summary>
/// Pulled models under <c>EXO_HOME</c> (default ~/.exo): each commit's files in <c>hub/ORG/NAME/COMMIT/</c>, each
/// revision's commit in <c>hub/ORG/NAME/refs/REVISION</c>, and <c>models/NAME</c> a link to the snapshot, so that
/// <c>EXO_HOME/models</c> is a models directory a shard worker reads (it follows links there).
/// </summary>
public sealed class ModelCache(string home)
{
    public string Home { get; } = Path.GetFullPath(home);

    /// <summary><c>EXO_HOME</c>, else ~/.exo.</summary>
    public static string DefaultHome() =>
        Environment.GetEnvironmentVariable("EXO_HOME") is { Length: > 0 } home ? home : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".exo");

    /// <summary>The folder of model folders (links to snapshots) that a shard worker can use as its models directory.</summary>
    public string ModelsDirectory => Path.Combine(Home, "models");

    public string RepositoryFolder(ModelReference model) => Path.Combine(Home, "hub", model.Organization, model.Name);

    public string Snapshot(ModelReference model, string commit) =>
        ModelPaths.Problem(commit) is null && !commit.Contains('/', StringComparison.Ordinal)
            ? Path.Combine(RepositoryFolder(model), commit)
            : throw new ArgumentException($"'{commit}' is not a commit");

    public string Link(ModelReference model) => Path.Combine(ModelsDirectory, model.Name);

    /// <summary>
    /// Gets <paramref name="model"/>'s files at the commit the hub resolves its revision to (from the peers first
    /// when they have them), and only when every file is in place records the revision and points the link at it.
    /// </summary>
    public async Task<PulledModel> PullAsync(ModelReference model, HubSource hub, IReadOnlyList<IModelSource> peers, ModelDownloader downloader,
        IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        ModelListing listing;
        // A hub that takes the connection and never answers must not hang the pull: it has as long as a silent download.
        using var patience = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        patience.CancelAfter(downloader.Options.IdleTimeout);
        try
        {
            listing = await hub.ListAsync(patience.Token);
        }
        catch (ModelSourceException e)
        {
            throw new ModelDownloadException(e.Message);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ModelDownloadException($"{hub.Name}: no answer to the file list in {downloader.Options.IdleTimeout.TotalSeconds:0} s; check the network or HF_ENDPOINT, and try again");
        }

        var snapshot = Snapshot(model, listing.Commit!);
        var result = await downloader.DownloadAsync([.. peers, hub], snapshot, progress, cancellationToken, listing);
        WriteRef(model, listing.Commit!);
        var link = PointLink(model, snapshot);
        return new PulledModel(model, listing.Commit!, snapshot, link, result);
    }

    /// <summary>Every pulled revision, by repository and revision.</summary>
    public IReadOnlyList<CachedModel> List()
    {
        var hub = Path.Combine(Home, "hub");
        var models = new List<CachedModel>();
        if (!Directory.Exists(hub)) return models;
        foreach (var repository in Directory.EnumerateDirectories(hub).SelectMany(Directory.EnumerateDirectories))
        {
            var refs = Path.Combine(repository, "refs");
            if (!Directory.Exists(refs)) continue;
            var organization = Path.GetFileName(Path.GetDirectoryName(repository)!);
            foreach (var refFile in Directory.EnumerateFiles(refs, "*", SearchOption.AllDirectories))
            {
                var revision = Path.GetRelativePath(refs, refFile).Replace(Path.DirectorySeparatorChar, '/');
                var commit = File.ReadAllText(refFile).Trim();
                ModelReference model;
                string snapshot;
                try
                {
                    model = ModelReference.Parse($"{organization}/{Path.GetFileName(repository)}@{revision}");
                    snapshot = Snapshot(model, commit);
                }
                catch (ArgumentException)
                {
                    continue;
                }

                if (!Directory.Exists(snapshot)) continue;
                var size = Directory.EnumerateFiles(snapshot, "*", SearchOption.AllDirectories)
                    .Where(f => !f.EndsWith(ModelDownloader.PartialSuffix, StringComparison.Ordinal)).Sum(f => new FileInfo(f).Length);
                var linked = Posix.RealPath(Link(model)) is { } target && target == Posix.RealPath(snapshot);
                models.Add(new CachedModel(model, commit, size, snapshot, linked));
            }
        }

        return [.. models.OrderBy(m => m.Model.RepoId, StringComparer.Ordinal).ThenBy(m => m.Model.Revision, StringComparer.Ordinal)];
    }

    /// <summary>Removes every snapshot of <paramref name="model"/>'s repository and its link; false when nothing was there.</summary>
    public bool Remove(ModelReference model)
    {
        var repository = RepositoryFolder(model);
        var link = new FileInfo(Link(model));
        var removed = false;
        if (link.LinkTarget is not null && Posix.IsInside(Path.GetFullPath(link.LinkTarget, ModelsDirectory), repository))
        {
            link.Delete();
            removed = true;
        }

        if (Directory.Exists(repository))
        {
            Directory.Delete(repository, recursive: true);
            removed = true;
        }

        return removed;
    }

    private void WriteRef(ModelReference model, string commit)
    {
        var refFile = Path.Combine(RepositoryFolder(model), "refs", model.Revision.Replace('/', Path.DirectorySeparatorChar));
        Directory.CreateDirectory(Path.GetDirectoryName(refFile)!);
        var temporary = $"{refFile}.{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temporary, commit);
        File.Move(temporary, refFile, overwrite: true);
    }

    /// <summary>Points models/NAME at the snapshot, replacing an older link in one rename; a real folder of that name is left alone.</summary>
    private string PointLink(ModelReference model, string snapshot)
    {
        var link = Link(model);
        Directory.CreateDirectory(ModelsDirectory);
        if (Directory.Exists(link) && new DirectoryInfo(link).LinkTarget is null)
            throw new IOException($"{link} is a folder of its own, not a link this cache made: move it away to use the pulled {model.RepoId} as '{model.Name}'");
        var temporary = Path.Combine(ModelsDirectory, $".{model.Name}.{Guid.NewGuid():N}.tmp");
        File.CreateSymbolicLink(temporary, snapshot);
        Posix.Rename(temporary, link);
        return link;
    }
}

/// <summary>A revision in the cache: its commit, the size of its files, its snapshot folder, and whether models/NAME points at it.</summary>
public sealed record CachedModel(ModelReference Model, string Commit, long Size, string Path, bool Linked);

/// <summary>What a pull did: the commit, the snapshot, the link to it, and the download's files and bytes.</summary>
public sealed record PulledModel(ModelReference Model, string Commit, string Snapshot, string Link, DownloadResult Download);
