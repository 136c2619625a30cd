namespace Exo.Hub;

/// <summary>
/// One file of a model as a source lists it: its path inside the model folder ('/'-separated), its size, and what its
/// bytes are checked against: the SHA-256 (hub LFS files, every file a peer serves) or the hub's ETag, which for a file
/// kept in git is the git blob id.
/// </summary>
public sealed record ModelFile(string Path, long Size, string? Sha256, string? ETag = null)
{
    /// <summary>Whether <paramref name="other"/> (another source's listing) describes the same bytes.</summary>
    public bool SameContent(ModelFile other) =>
        Path == other.Path && Size == other.Size
        && (Sha256 is null || other.Sha256 is null || string.Equals(Sha256, other.Sha256, StringComparison.OrdinalIgnoreCase))
        && (ETag is null || other.ETag is null || string.Equals(ETag, other.ETag, StringComparison.OrdinalIgnoreCase));
}

/// <summary>A model's files as one source lists them, with the commit they are at when the source knows it (the hub).</summary>
public sealed record ModelListing(string? Commit, IReadOnlyList<ModelFile> Files);
