using System.Buffers;

namespace Exo.Hub;

/// <summary>
/// Reads a byte range of a file from a source into a sink, and when the connection drops or goes silent, asks again
/// with a Range request from the first byte it does not have yet, after a pause that doubles with each failure; a try
/// that got bytes resets the count. Every byte received is counted through <paramref name="received"/>.
/// </summary>
internal sealed class RangeReader(DownloadOptions options, Action<long> received)
{
    private const int BufferBytes = 256 * 1024;

    public delegate ValueTask Sink(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken);

    public async Task CopyAsync(IModelSource source, ModelFile file, long offset, long length, Sink sink, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferBytes);
        try
        {
            long done = 0;
            var failures = 0;
            while (done < length)
            {
                var before = done;
                try
                {
                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    idle.CancelAfter(options.IdleTimeout);
                    await using var stream = await source.OpenAsync(file, offset + done, length - done, idle.Token);
                    while (done < length)
                    {
                        idle.CancelAfter(options.IdleTimeout);
                        int n;
                        try
                        {
                            n = await stream.Body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, length - done)), idle.Token);
                        }
                        catch (IOException e)
                        {
                            throw new ModelSourceException($"{source.Name}: the connection dropped at byte {offset + done} of {file.Path} ({e.Message})", transient: true, e);
                        }

                        if (n == 0) throw new ModelSourceException($"{source.Name}: the connection closed at byte {offset + done} of {file.Path}", transient: true);
                        received(n);
                        await sink(buffer.AsMemory(0, n), cancellationToken);
                        done += n;
                    }
                }
                catch (Exception e) when (e is ModelSourceException { Transient: true } || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
                {
                    failures = done > before ? 1 : failures + 1;
                    var reason = e is OperationCanceledException ? $"{source.Name}: no data for {options.IdleTimeout.TotalSeconds:0.#} s while reading {file.Path} (timed out)" : e.Message;
                    if (failures >= options.MaxAttempts) throw new ModelSourceException($"{reason}; gave up after {failures} tries", inner: e);
                    await Task.Delay(options.RetryDelay * Math.Pow(2, failures - 1), cancellationToken);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The bytes of a small range (a header, an index) in memory; <paramref name="length"/> is checked by the caller.</summary>
    public async Task<byte[]> ReadAsync(IModelSource source, ModelFile file, long offset, int length, CancellationToken cancellationToken)
    {
        var bytes = new byte[length];
        var at = 0;
        await CopyAsync(source, file, offset, length, (chunk, _) =>
        {
            chunk.Span.CopyTo(bytes.AsSpan(at));
            at += chunk.Length;
            return ValueTask.CompletedTask;
        }, cancellationToken);
        return bytes;
    }
}
