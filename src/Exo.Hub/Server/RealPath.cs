using System.Runtime.InteropServices;

namespace Exo.Hub;

/// <summary>A path with every link in it followed, as the kernel follows them (libc's realpath): what a file really is.</summary>
internal static class RealPath
{
    /// <summary>The real path of <paramref name="path"/>; null when it does not exist.</summary>
    public static string? Of(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            // No realpath: the final link is followed, links in the folders above it are not.
            var info = new FileInfo(path);
            return info.Exists || Directory.Exists(path) ? info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path) : null;
        }

        var resolved = Resolve(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero) return null;
        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            Free(resolved);
        }
    }

    /// <summary>Whether <paramref name="path"/> (a real path) is <paramref name="root"/> or inside it.</summary>
    public static bool IsInside(string path, string root) =>
        path == root || path.StartsWith(Path.TrimEndingDirectorySeparator(root) + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    // DllImport rather than LibraryImport: its generated code would need unsafe blocks, for two blittable calls.
    [DllImport("libc", EntryPoint = "realpath", SetLastError = true)]
    private static extern IntPtr Resolve([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [DllImport("libc", EntryPoint = "free")]
    private static extern void Free(IntPtr pointer);
}
