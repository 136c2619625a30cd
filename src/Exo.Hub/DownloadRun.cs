using System.Collections.Concurrent;
using System.Text.Json;

namespace Exo.Hub;

/// <summary>One call of <see cref="ModelDownloader.DownloadAsync"/>: the sources' listings, the plan, the counters.</summary>
internal sealed class DownloadRun
{
    private const string ShardIndex = "model.safetensors.index.json";
    private const long MaxIndexBytes = 64L * 1024 * 1024;

    private readonly DownloadOptions _options;
    private readonly IReadOnlyList<IModelSource> _sources;
    private readonly string _destination;
    private readonly IProgress<DownloadProgress>? _progress;
    private readonly RangeReader _reader;
    private readonly ConcurrentDictionary<IModelSource, Lazy<Task<ModelListing>>> _listings = new();
    private long _transferred;
    private readonly ConcurrentDictionary<string, long> _fileDone = new(StringComparer.Ordinal);
    private long _done;
    private long _total;

    public DownloadRun(DownloadOptions options, IReadOnlyList<IModelSource> sources, string destination, IProgress<DownloadProgress>? progress)
    {
        _options = options;
        _sources = sources;
        _destination = destination;
        _progress = progress;
        _reader = new RangeReader(options, n => Interlocked.Add(ref _transferred, n));
    }

    /// <summary>A file to write: whole (<see cref="Ranges"/> null) or only some tensors; <see cref="Bytes"/> is what it will hold.</summary>
    private sealed record Plan(ModelFile File, SafetensorsRanges? Ranges, IModelSource Source)
    {
        public long Bytes => Ranges?.FileBytes ?? File.Size;
    }

    public async Task<DownloadResult> RunAsync(ModelListing? expected, CancellationToken cancellationToken)
    {
        var (first, listing) = expected is null ? await FirstListingAsync(cancellationToken) : (_sources[0], expected);
        var files = listing.Files.Where(f => _options.Files?.Invoke(f.Path) ?? true).ToList();
        Directory.CreateDirectory(_destination);

        var done = new ConcurrentBag<DownloadedFile>();
        var plans = new ConcurrentBag<Plan>();
        if (_options.Tensors is not null && files.FirstOrDefault(f => f.Path == ShardIndex) is { } index)
        {
            // The index says which shard holds each tensor: shards with none of the wanted ones are not touched.
            done.Add(await FetchAsync(new Plan(index, null, first), cancellationToken));
            var needed = NeededShards(Path.Combine(_destination, ShardIndex), _options.Tensors);
            files = files.Where(f => f != index && (!IsSafetensors(f.Path) || needed.Contains(f.Path))).ToList();
        }

        await Parallel.ForEachAsync(files, Bounded(cancellationToken), async (file, token) =>
        {
            if (await PlanAsync(file, first, token) is { } plan) plans.Add(plan);
            // Already there from an earlier run; a shard without any wanted tensor is not there and is left out.
            else if (File.Exists(Target(file))) done.Add(new DownloadedFile(file.Path, new FileInfo(Target(file)).Length, null, _options.Tensors is not null && IsSafetensors(file.Path)));
        });

        _total = plans.Sum(p => p.Bytes);
        CheckSpace(plans);
        await Parallel.ForEachAsync(plans.OrderByDescending(p => p.Bytes), Bounded(cancellationToken), async (plan, token) => done.Add(await FetchAsync(plan, token)));
        return new DownloadResult(listing.Commit, [.. done.OrderBy(f => f.Path, StringComparer.Ordinal)], Interlocked.Read(ref _transferred));
    }

    private ParallelOptions Bounded(CancellationToken cancellationToken) =>
        new() { MaxDegreeOfParallelism = Math.Max(1, _options.MaxParallelFiles), CancellationToken = cancellationToken };

    /// <summary>The first source, in order of preference, that lists the model: its listing is what every file is checked against.</summary>
    private async Task<(IModelSource Source, ModelListing Listing)> FirstListingAsync(CancellationToken cancellationToken)
    {
        var failures = new List<string>();
        foreach (var source in _sources)
        {
            try
            {
                return (source, await ListingAsync(source, cancellationToken));
            }
            catch (ModelSourceException e)
            {
                failures.Add(e.Message);
            }
        }

        throw new ModelDownloadException($"no source could list the model; tried {_sources.Count}: {string.Join("; ", failures)}");
    }

    private Task<ModelListing> ListingAsync(IModelSource source, CancellationToken cancellationToken) =>
        _listings.GetOrAdd(source, s => new Lazy<Task<ModelListing>>(() => ListWithRetriesAsync(s, cancellationToken))).Value;

    private async Task<ModelListing> ListWithRetriesAsync(IModelSource source, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                idle.CancelAfter(_options.IdleTimeout);
                try
                {
                    return await source.ListAsync(idle.Token);
                }
                catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new ModelSourceException($"{source.Name}: timed out: no answer within {_options.IdleTimeout.TotalSeconds:0.#} s", transient: true, e);
                }
            }
            catch (ModelSourceException e) when (e.Transient && attempt < _options.MaxAttempts)
            {
                await Task.Delay(_options.RetryDelay * Math.Pow(2, attempt - 1), cancellationToken);
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> on each source that lists <paramref name="file"/> with the same content, in order,
    /// until one succeeds; the error names every source and why it failed.
    /// </summary>
    private async Task<T> FromSourcesAsync<T>(ModelFile file, IModelSource preferred, Func<IModelSource, Task<T>> action, CancellationToken cancellationToken)
    {
        var failures = new List<string>();
        foreach (var source in _sources.Where(s => s == preferred).Concat(_sources.Where(s => s != preferred)))
        {
            try
            {
                var listing = await ListingAsync(source, cancellationToken);
                if (!listing.Files.Any(f => f.SameContent(file)))
                {
                    failures.Add($"{source.Name}: does not have {file.Path} as listed ({file.Size} bytes)");
                    continue;
                }

                return await action(source);
            }
            catch (ModelSourceException e)
            {
                failures.Add(e.Message);
            }
        }

        throw new ModelDownloadException($"could not get {file.Path}; tried {_sources.Count} source(s): {string.Join("; ", failures)}");
    }

    /// <summary>What to do for <paramref name="file"/>; null when the destination already has it.</summary>
    private async Task<Plan?> PlanAsync(ModelFile file, IModelSource preferred, CancellationToken cancellationToken)
    {
        var target = Target(file);
        if (_options.Tensors is null || !IsSafetensors(file.Path))
            return File.Exists(target) && new FileInfo(target).Length == file.Size ? null : new Plan(file, null, preferred);

        return await FromSourcesAsync(file, preferred, async source =>
        {
            var header = await SafetensorsRanges.ReadHeaderAsync(_reader, source, file, cancellationToken);
            var ranges = SafetensorsRanges.Plan(header, _options.Tensors);
            return ranges is null || (File.Exists(target) && ranges.IsSatisfiedBy(target)) ? null : new Plan(file, ranges, source);
        }, cancellationToken);
    }

    private async Task<DownloadedFile> FetchAsync(Plan plan, CancellationToken cancellationToken)
    {
        var target = Target(plan.File);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var source = await FromSourcesAsync(plan.File, plan.Source, async source =>
        {
            if (plan.Ranges is null) await FetchWholeAsync(source, plan.File, target, cancellationToken);
            else await FetchTensorsAsync(source, plan.File, plan.Ranges, target, cancellationToken);
            return source;
        }, cancellationToken);
        return new DownloadedFile(plan.File.Path, new FileInfo(target).Length, source.Name, plan.Ranges is not null);
    }

    private async Task FetchWholeAsync(IModelSource source, ModelFile file, string target, CancellationToken cancellationToken)
    {
        var partial = target + ModelDownloader.PartialSuffix;
        // A part left by an interrupted run (or a source that failed) is resumed; if what it held turns out wrong, the
        // file is fetched once more from its first byte.
        for (var pass = 0; ; pass++)
        {
            using var check = new FileCheck(file);
            var resumed = File.Exists(partial) ? new FileInfo(partial).Length : 0;
            if (pass > 0 || resumed > file.Size) resumed = 0;
            if (resumed > 0) await check.AppendFileAsync(partial, resumed, cancellationToken);
            await using (var output = new FileStream(partial, FileMode.OpenOrCreate, FileAccess.Write, FileShare.None, 1, useAsync: true))
            {
                output.SetLength(resumed);
                output.Position = resumed;
                SetDone(file.Path, resumed, file.Size);
                await _reader.CopyAsync(source, file, resumed, file.Size - resumed, async (chunk, token) =>
                {
                    await WriteAsync(output, chunk, file, file.Size, token);
                    check.Append(chunk.Span);
                }, cancellationToken);
                output.Flush(flushToDisk: true);
            }

            if (check.Mismatch() is not { } mismatch) break;
            File.Delete(partial);
            SetDone(file.Path, 0, file.Size);
            if (resumed == 0 || pass > 0) throw new ModelSourceException($"{source.Name}: {file.Path} {mismatch}; the download was deleted");
        }

        File.Move(partial, target, overwrite: true);
    }

    private async Task FetchTensorsAsync(IModelSource source, ModelFile file, SafetensorsRanges ranges, string target, CancellationToken cancellationToken)
    {
        var partial = target + ModelDownloader.PartialSuffix;
        await using (var output = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1, useAsync: true))
        {
            SetDone(file.Path, 0, ranges.FileBytes);
            await ranges.WriteAsync(_reader, source, file, (chunk, token) => WriteAsync(output, chunk, file, ranges.FileBytes, token), cancellationToken);
            output.Flush(flushToDisk: true);
            if (output.Length != ranges.FileBytes)
                throw new ModelSourceException($"{source.Name}: wrote {output.Length} bytes of {file.Path}'s tensors where {ranges.FileBytes} were expected");
        }

        File.Move(partial, target, overwrite: true);
    }

    private async ValueTask WriteAsync(FileStream output, ReadOnlyMemory<byte> chunk, ModelFile file, long total, CancellationToken cancellationToken)
    {
        try
        {
            await output.WriteAsync(chunk, cancellationToken);
        }
        catch (IOException e) when (DiskFullException.IsDiskFull(e))
        {
            throw new DiskFullException(total - output.Position, _destination, e);
        }

        SetDone(file.Path, output.Position, total);
    }

    /// <summary>Records that <paramref name="file"/> now has <paramref name="fileDone"/> bytes and reports it.</summary>
    private void SetDone(string file, long fileDone, long fileTotal)
    {
        var before = _fileDone.GetValueOrDefault(file);
        _fileDone[file] = fileDone;
        var done = Interlocked.Add(ref _done, fileDone - before);
        _progress?.Report(new DownloadProgress(file, fileDone, fileTotal, done, _total));
    }

    private void CheckSpace(IEnumerable<Plan> plans)
    {
        var needed = plans.Sum(p => p.Ranges is null && File.Exists(Target(p.File) + ModelDownloader.PartialSuffix)
            ? p.Bytes - Math.Min(p.Bytes, new FileInfo(Target(p.File) + ModelDownloader.PartialSuffix).Length) : p.Bytes);
        var free = new DriveInfo(_destination).AvailableFreeSpace;
        if (needed > free) throw new DiskFullException(needed, _destination);
    }

    private static HashSet<string> NeededShards(string indexPath, Func<string, bool> wanted)
    {
        var length = new FileInfo(indexPath).Length;
        if (length > MaxIndexBytes) throw new ModelDownloadException($"{ShardIndex} is {length} bytes, more than {MaxIndexBytes}: not an index");
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!document.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new ModelDownloadException($"{ShardIndex} has no weight_map object");
            var shards = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String) throw new ModelDownloadException($"{ShardIndex}: '{entry.Name}' does not name a shard file");
                if (wanted(entry.Name)) shards.Add(entry.Value.GetString()!);
            }

            return shards;
        }
        catch (JsonException e)
        {
            throw new ModelDownloadException($"{ShardIndex} is not JSON ({e.Message})");
        }
    }

    private static bool IsSafetensors(string path) => path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);

    private string Target(ModelFile file) => ModelPaths.Combine(_destination, file.Path);
}
