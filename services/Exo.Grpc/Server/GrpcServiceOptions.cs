namespace Exo.Grpc;

/// <summary>Server-wide settings, as in grpc-dotnet's <c>GrpcServiceOptions</c>.</summary>
public sealed class GrpcServiceOptions
{
    /// <summary>Largest request message accepted; larger ones fail with RESOURCE_EXHAUSTED. Null: no limit.</summary>
    public int? MaxReceiveMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest response message sent; larger ones fail with RESOURCE_EXHAUSTED. Null: no limit.</summary>
    public int? MaxSendMessageSize { get; set; }

    /// <summary>Put exception type, message and stack trace in UNKNOWN statuses. Off: only a generic message leaves the server.</summary>
    public bool EnableDetailedErrors { get; set; }

    /// <summary>Compress responses with this grpc-encoding ("gzip") when the client accepts it. Null: identity.</summary>
    public string? ResponseCompressionAlgorithm { get; set; }
}

/// <summary>Counts calls in progress so that tests and health checks can see that none leak.</summary>
public sealed class GrpcServerActivity
{
    private long _activeCalls;
    private long _completedCalls;

    public long ActiveCalls => Interlocked.Read(ref _activeCalls);

    public long CompletedCalls => Interlocked.Read(ref _completedCalls);

    internal void CallStarted() => Interlocked.Increment(ref _activeCalls);

    internal void CallEnded()
    {
        Interlocked.Decrement(ref _activeCalls);
        Interlocked.Increment(ref _completedCalls);
    }
}
