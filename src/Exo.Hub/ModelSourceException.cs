namespace Exo.Hub;

/// <summary>
/// A source could not give what was asked: <see cref="Transient"/> when trying again may help (a dropped connection, a
/// timeout, a 5xx), otherwise a fact about the source (no such model, no access, a corrupt file) that moves the
/// downloader on to the next source.
/// </summary>
public sealed class ModelSourceException(string message, bool transient = false, Exception? inner = null) : Exception(message, inner)
{
    public bool Transient { get; } = transient;
}

/// <summary>No source could give a model (or one of its files): the message names every source tried and why each failed.</summary>
public sealed class ModelDownloadException(string message) : Exception(message);

/// <summary>The destination's disk has no room for what is still to be written.</summary>
public sealed class DiskFullException(long bytesNeeded, string directory, Exception? inner = null)
    : IOException($"disk full: {bytesNeeded} bytes needed in {directory}; free some space there or choose another folder (EXO_HOME)", inner)
{
    public long BytesNeeded { get; } = bytesNeeded;

    // ENOSPC is 28 on Linux and macOS, where .NET puts the errno in HResult; Windows' ERROR_DISK_FULL and ERROR_HANDLE_DISK_FULL.
    internal static bool IsDiskFull(IOException e) => e.HResult is 28 or unchecked((int)0x80070070) or unchecked((int)0x80070027);
}
