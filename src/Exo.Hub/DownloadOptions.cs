namespace Exo.Hub;

/// <summary>How the downloader works: parallelism, retries, timeouts, and which files and tensors it fetches.</summary>
public sealed record DownloadOptions
{
    /// <summary>Files downloaded at once.</summary>
    public int MaxParallelFiles { get; init; } = 4;

    /// <summary>Tries of one request before the source is given up for that file; a try that made progress resets the count.</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>The first pause between tries, doubled after each.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a connection may stay silent (no headers, no bytes) before it counts as dropped.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Which of the listed files to get (by path); all when null.</summary>
    public Func<string, bool>? Files { get; init; }

    /// <summary>
    /// Which tensors to get, by name; when set, each .safetensors file is written holding only these (fetched by byte
    /// range), shards of a sharded model that hold none are skipped, and other files are fetched whole.
    /// </summary>
    public Func<string, bool>? Tensors { get; init; }
}

/// <summary>
/// Where a download stands: the file that moved, its bytes done of its total, and the bytes done of the total over
/// every file (bytes of the files that are written, so a layer-range fetch counts only its tensors).
/// </summary>
public sealed record DownloadProgress(string File, long FileDone, long FileTotal, long Done, long Total);

/// <summary>What a download wrote, and how many bytes it moved over the network to do so.</summary>
public sealed record DownloadResult(string? Commit, IReadOnlyList<DownloadedFile> Files, long BytesTransferred);

/// <summary>One file in the destination: its size there, the source it came from (null when it was already there), and whether it holds only some tensors.</summary>
public sealed record DownloadedFile(string Path, long Size, string? Source, bool Subset);
