using System.Runtime.InteropServices;

namespace Exo.Hub;

/// <summary>
/// The file-system calls .NET does not offer: a path with every link in it followed, as the kernel follows them
/// (realpath), and a rename that replaces a link to a folder in one step (rename).
/// </summary>
internal static class Posix
{
    /// <summary>The real path of <paramref name="path"/>; null when it does not exist.</summary>
    public static string? RealPath(string path)
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

    /// <summary>Renames <paramref name="from"/> to <paramref name="to"/>, replacing what is there in one step (File.Move follows a link to a folder).</summary>
    public static void Rename(string from, string to)
    {
        if (OperatingSystem.IsWindows())
        {
            if (Path.Exists(to)) File.Delete(to);
            File.Move(from, to);
        }
        else if (RenameEntry(from, to) != 0)
        {
            throw new IOException($"cannot rename {from} to {to}: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    // DllImport rather than LibraryImport: its generated code would need unsafe blocks, for these plain calls.
    [DllImport("libc", EntryPoint = "rename", SetLastError = true)]
    private static extern int RenameEntry([MarshalAs(UnmanagedType.LPUTF8Str)] string from, [MarshalAs(UnmanagedType.LPUTF8Str)] string to);

    [DllImport("libc", EntryPoint = "realpath", SetLastError = true)]
    private static extern IntPtr Resolve([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [DllImport("libc", EntryPoint = "free")]
    private static extern void Free(IntPtr pointer);
}
