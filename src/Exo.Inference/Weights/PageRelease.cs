using System.Runtime.InteropServices;

namespace Exo.Inference.Weights;

/// <summary>
/// Drops the pages of a read-only file mapping from the process (madvise MADV_DONTNEED) once their bytes have been
/// copied elsewhere, so that a weight re-laid-out at load is not resident twice. The file's pages stay in the page
/// cache, and touching the range again simply maps them back in. Only for file mappings: anonymous memory would be
/// zeroed.
/// </summary>
internal static unsafe partial class PageRelease
{
    private const int DontNeed = 4; // MADV_DONTNEED on Linux and macOS

    /// <summary>Releases the whole pages inside [start, start + length); partial pages at either end stay.</summary>
    public static void Release(byte* start, long length)
    {
        if (!(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) || length <= 0) return;
        var page = Environment.SystemPageSize;
        var first = ((long)start + page - 1) / page * page;
        var end = ((long)start + length) / page * page;
        if (end > first) _ = Madvise((nint)first, (nuint)(end - first), DontNeed);
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(nint address, nuint length, int advice);
}
