using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Exo.Hub;

/// <summary>
/// SHA-256 of served files, computed once per version of a file (its real path, size and modification time) and
/// shared by concurrent requests; a file that changes gets a new entry and the old one is dropped.
/// </summary>
internal sealed class FileHashes
{
    private readonly record struct Version(long Size, DateTime Modified);

    private readonly ConcurrentDictionary<string, (Version Version, Lazy<Task<string>> Hash)> _hashes = new(StringComparer.Ordinal);

    public Task<string> Sha256Async(string realPath, CancellationToken cancellationToken)
    {
        var info = new FileInfo(realPath);
        var version = new Version(info.Length, info.LastWriteTimeUtc);
        var entry = _hashes.AddOrUpdate(realPath,
            _ => (version, Compute(realPath)),
            (_, old) => old.Version == version && !old.Hash.Value.IsFaulted ? old : (version, Compute(realPath)));
        return entry.Hash.Value.WaitAsync(cancellationToken);
    }

    // Not tied to one request's cancellation: other requests wait for the same hash.
    private static Lazy<Task<string>> Compute(string path) => new(async () =>
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, useAsync: true);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream));
    });
}
