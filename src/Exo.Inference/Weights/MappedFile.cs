using System.IO.MemoryMappedFiles;

namespace Exo.Inference.Weights;

/// <summary>A whole file mapped read-only, with a pointer to its first byte; weight files are views over one of these.</summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;

    private MappedFile(MemoryMappedFile map, MemoryMappedViewAccessor view, byte* pointer, long length)
    {
        _map = map;
        _view = view;
        Pointer = pointer;
        Length = length;
    }

    public byte* Pointer { get; }
    public long Length { get; }

    /// <summary>Maps <paramref name="path"/>; a file shorter than <paramref name="minimumLength"/> is a clear error naming <paramref name="kind"/>.</summary>
    public static MappedFile Open(string path, long minimumLength, string kind)
    {
        // The length comes from the opened file, not the path: a symlinked weight file (as in Hugging Face's cache)
        // must be measured at its target.
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var length = stream.Length;
        if (length < minimumLength)
        {
            stream.Dispose();
            throw new ModelFormatException($"{path}: {length} bytes is too short for {kind} (truncated?)");
        }

        var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            return new MappedFile(map, view, pointer + view.PointerOffset, length);
        }
        catch
        {
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
