namespace Exo.Grpc.Server;

/// <summary>Reads request messages from the HTTP/2 request body.</summary>
internal sealed class ServerStreamReader<T>(ServerCall call, Marshaller<T> marshaller) : IAsyncStreamReader<T>
{
    private T? _current;

    public T Current => _current ?? throw new InvalidOperationException("MoveNext has not returned true yet.");

    public async Task<bool> MoveNext(CancellationToken cancellationToken)
    {
        var callToken = call.Context.CancellationToken;
        using var linked = cancellationToken.CanBeCanceled && cancellationToken != callToken
            ? CancellationTokenSource.CreateLinkedTokenSource(callToken, cancellationToken)
            : null;
        var (hasMessage, message) = await call.Reader
            .ReadAsync(marshaller.ContextualDeserializer, linked?.Token ?? callToken)
            .ConfigureAwait(false);
        _current = message;
        return hasMessage;
    }
}

/// <summary>Writes response messages to the HTTP/2 response body, flushing each so it leaves at once.</summary>
internal sealed class ServerStreamWriter<T>(ServerCall call, Marshaller<T> marshaller) : IServerStreamWriter<T>
{
    private int _writing;

    public async Task WriteAsync(T message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (Interlocked.Exchange(ref _writing, 1) == 1)
        {
            throw new InvalidOperationException("Only one write can be pending at a time.");
        }

        try
        {
            var callToken = call.Context.CancellationToken;
            callToken.ThrowIfCancellationRequested();
            call.Writer.Write(message, marshaller.ContextualSerializer);
            call.MessageWritten = true;
            call.Context.MarkResponseStarted();
            using var linked = cancellationToken.CanBeCanceled && cancellationToken != callToken
                ? CancellationTokenSource.CreateLinkedTokenSource(callToken, cancellationToken)
                : null;
            await call.Writer.FlushAsync(linked?.Token ?? callToken).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _writing, 0);
        }
    }
}
