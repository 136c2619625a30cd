namespace Exo.Hub;

/// <summary>
/// A file's path inside a model folder, as a listing (the hub's, a peer's) or a request names it: '/'-separated
/// segments, none empty, "." or "..", none hidden, no backslashes, drive letters or control characters, so that
/// joining it to a folder can only name something inside that folder.
/// </summary>
public static class ModelPaths
{
    private const int MaxLength = 1024;

    /// <summary>What is wrong with <paramref name="path"/>; null when it is a plain relative path.</summary>
    public static string? Problem(string path)
    {
        if (path.Length is 0 or > MaxLength) return $"a file path must be 1 to {MaxLength} characters";
        if (path.StartsWith('/')) return "absolute paths are not allowed";
        if (path.Any(c => char.IsControl(c) || c is '\\' or ':')) return "backslashes, colons and control characters are not allowed";
        foreach (var segment in path.Split('/'))
        {
            if (segment is "" or "." or "..") return "empty, '.' and '..' segments are not allowed";
            if (segment.StartsWith('.')) return "hidden files are not allowed";
        }

        return null;
    }

    /// <summary>Whether a segment of <paramref name="path"/> is a hidden name (".gitattributes", ".cache/...").</summary>
    private static readonly char[] NotInAName = [.. Path.GetInvalidFileNameChars(), '/', '\\'];

    /// <summary>
    /// Whether <paramref name="modelId"/> (from the network: a placement, a peer's request) names a folder directly
    /// inside a models directory: one plain name, not hidden, no separators, nothing that leads elsewhere.
    /// </summary>
    public static bool IsModelId(string modelId) => modelId.Length > 0 && !modelId.StartsWith('.') && modelId.IndexOfAny(NotInAName) < 0;

    public static bool IsHidden(string path) => path.Split('/').Any(segment => segment.StartsWith('.') && segment is not ("." or ".."));

    /// <summary><paramref name="path"/> under <paramref name="folder"/>; an <see cref="ArgumentException"/> for a path that could lead elsewhere.</summary>
    public static string Combine(string folder, string path) =>
        Problem(path) is { } problem ? throw new ArgumentException($"'{path}': {problem}") : Path.Combine(folder, path.Replace('/', Path.DirectorySeparatorChar));
}
