namespace Exo.Hub;

/// <summary>
/// Which files of the models directory may be served, and their hashes. Model ids and paths come from the network:
/// a model is a folder directly inside the models directory; a file is a regular, not hidden, finished file inside
/// it whose real path (links followed) stays inside that folder or the models directory.
/// </summary>
internal sealed class ModelFileStore(ModelFileOptions options)
{
    private readonly FileHashes _hashes = new();

    /// <summary>A served file: its path in the listing and its real path on disk.</summary>
    public sealed record Entry(string Path, string RealPath);

    /// <summary>The model folder's real path and the real roots its files may lie in; null when <paramref name="modelId"/> names no model folder.</summary>
    private (string Folder, string[] Roots)? Model(string modelId)
    {
        if (!ModelPaths.IsModelId(modelId)) return null;
        var models = Posix.RealPath(options.ModelsDirectory);
        // The folder itself may be a link the machine's owner put there (EXO_HOME/models/NAME points into the hub cache).
        var folder = models is null ? null : Posix.RealPath(Path.Combine(models, modelId));
        return folder is null || !Directory.Exists(folder) ? null : (folder, [models!, folder]);
    }

    /// <summary>The model's files, sorted by path; null when there is no such model.</summary>
    public IReadOnlyList<Entry>? List(string modelId)
    {
        if (Model(modelId) is not var (folder, roots)) return null;
        var entries = new List<Entry>();
        var walk = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0, MaxRecursionDepth = 16 };
        foreach (var file in Directory.EnumerateFiles(folder, "*", walk))
        {
            var relative = Path.GetRelativePath(folder, file).Replace(Path.DirectorySeparatorChar, '/');
            if (Resolve(relative, folder, roots) is not { } real) continue;
            if (entries.Count == options.MaxFiles) throw new InvalidOperationException($"model '{modelId}' has more than {options.MaxFiles} files");
            entries.Add(new Entry(relative, real));
        }

        entries.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return entries;
    }

    /// <summary>The file <paramref name="path"/> of the model; null when it is not one that may be served.</summary>
    public Entry? Find(string modelId, string path) =>
        Model(modelId) is var (folder, roots) && Resolve(path, folder, roots) is { } real ? new Entry(path, real) : null;

    public Task<string> Sha256Async(Entry entry, CancellationToken cancellationToken) => _hashes.Sha256Async(entry.RealPath, cancellationToken);

    private static string? Resolve(string path, string folder, string[] roots)
    {
        if (ModelPaths.Problem(path) is not null || path.EndsWith(ModelDownloader.PartialSuffix, StringComparison.Ordinal)) return null;
        var real = Posix.RealPath(ModelPaths.Combine(folder, path));
        return real is not null && roots.Any(root => Posix.IsInside(real, root)) && File.Exists(real)
               && !File.GetAttributes(real).HasFlag(FileAttributes.Directory) ? real : null;
    }
}
