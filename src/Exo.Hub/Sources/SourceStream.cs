namespace Exo.Hub;

/// <summary>An open byte range of a file: <see cref="Body"/> yields <see cref="Length"/> bytes; disposing it ends the response.</summary>
public sealed class SourceStream(Stream body, long length, IDisposable? owner = null) : IAsyncDisposable
{
    public Stream Body { get; } = body;

    public long Length { get; } = length;

    public async ValueTask DisposeAsync()
    {
        await Body.DisposeAsync();
        owner?.Dispose();
    }
}
