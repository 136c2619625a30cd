namespace Exo.Hub;

/// <summary>
/// Some tensors of a remote safetensors file: its header read with two range requests, then only the wanted tensors'
/// bytes fetched (neighbouring tensors in one request) and written as a new, valid safetensors file that holds just
/// them, with the same dtypes, shapes and data, the same metadata and a header with the new offsets.
/// </summary>
internal sealed class SafetensorsRanges
{
    // Tensors this close together are fetched in one request; the bytes between them are read and dropped.
    private const long MergeGap = 64 * 1024;

    private readonly byte[] _header;

    private SafetensorsRanges(SafetensorsHeader source, IReadOnlyList<SafetensorsTensor> wanted)
    {
        Source = source;
        Wanted = wanted;
        _header = source.Write(wanted);
        Ranges = Coalesce(wanted);
    }

    public SafetensorsHeader Source { get; }

    /// <summary>The tensors to fetch, in the order of their data.</summary>
    public IReadOnlyList<SafetensorsTensor> Wanted { get; }

    /// <summary>The requests: [Begin, End) within the source's data section.</summary>
    public IReadOnlyList<(long Begin, long End)> Ranges { get; }

    /// <summary>The size of the file written.</summary>
    public long FileBytes => _header.Length + Wanted.Sum(t => t.Length);

    public static async Task<SafetensorsHeader> ReadHeaderAsync(RangeReader reader, IModelSource source, ModelFile file, CancellationToken cancellationToken)
    {
        var what = $"{source.Name}: {file.Path}";
        if (file.Size < 8) throw new ModelSourceException($"{what} is {file.Size} bytes, too short for safetensors");
        var prefix = await reader.ReadAsync(source, file, 0, 8, cancellationToken);
        try
        {
            var length = SafetensorsHeader.HeaderLength(prefix, file.Size, what);
            return SafetensorsHeader.Parse(await reader.ReadAsync(source, file, 8, length, cancellationToken), file.Size, what);
        }
        catch (FormatException e)
        {
            throw new ModelSourceException(e.Message, inner: e);
        }
    }

    /// <summary>The plan for the tensors <paramref name="wanted"/> names; null when it names none.</summary>
    public static SafetensorsRanges? Plan(SafetensorsHeader header, Func<string, bool> wanted)
    {
        var tensors = header.Tensors.Where(t => wanted(t.Name)).ToList();
        return tensors.Count == 0 ? null : new SafetensorsRanges(header, tensors);
    }

    /// <summary>Whether the file at <paramref name="path"/> already holds every wanted tensor (a full file does, or an earlier run's).</summary>
    public bool IsSatisfiedBy(string path)
    {
        if (SafetensorsHeader.TryRead(path) is not { } local) return false;
        var held = local.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        return Wanted.All(t => held.TryGetValue(t.Name, out var h) && h.DType == t.DType && h.Shape.SequenceEqual(t.Shape));
    }

    /// <summary>Writes the new file through <paramref name="write"/>: the header, then each wanted tensor's bytes.</summary>
    public async Task WriteAsync(RangeReader reader, IModelSource source, ModelFile file, RangeReader.Sink write, CancellationToken cancellationToken)
    {
        await write(_header, cancellationToken);
        var next = 0;
        foreach (var (begin, end) in Ranges)
        {
            var position = begin;
            await reader.CopyAsync(source, file, Source.DataStart + begin, end - begin, async (chunk, token) =>
            {
                // Keep the parts of the chunk that lie inside wanted tensors; what lies between them is dropped.
                var chunkEnd = position + chunk.Length;
                while (next < Wanted.Count && Wanted[next].Begin < chunkEnd)
                {
                    var tensor = Wanted[next];
                    var from = Math.Max(tensor.Begin, position);
                    var to = Math.Min(tensor.End, chunkEnd);
                    if (to > from) await write(chunk.Slice((int)(from - position), (int)(to - from)), token);

                    if (tensor.End > chunkEnd) break;
                    next++;
                }

                position = chunkEnd;
            }, cancellationToken);
        }
    }

    private static List<(long Begin, long End)> Coalesce(IReadOnlyList<SafetensorsTensor> tensors)
    {
        var ranges = new List<(long Begin, long End)>();
        foreach (var t in tensors)
        {
            if (t.Length == 0) continue;
            if (ranges.Count > 0 && t.Begin - ranges[^1].End <= MergeGap) ranges[^1] = (ranges[^1].Begin, Math.Max(ranges[^1].End, t.End));
            else ranges.Add((t.Begin, t.End));
        }

        return ranges;
    }
}
