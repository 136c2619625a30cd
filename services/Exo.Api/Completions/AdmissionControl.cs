namespace Exo.Api.Completions;

/// <summary>The API's queue is full: the client should retry later (429).</summary>
public sealed class AdmissionRejectedException(string message) : Exception(message);

/// <summary>
/// Bounds the generations in flight and the requests waiting for one, so a burst queues briefly and an overload is
/// refused at once with 429 instead of piling up memory.
/// </summary>
public sealed class AdmissionControl(int maxConcurrent, int maxWaiting)
{
    private readonly SemaphoreSlim _slots = new(maxConcurrent, maxConcurrent);
    private int _waiting;

    public int InFlight => maxConcurrent - _slots.CurrentCount;

    public int Waiting => Volatile.Read(ref _waiting);

    public async Task<IDisposable> EnterAsync(CancellationToken cancellationToken)
    {
        if (_slots.Wait(0)) return new Slot(_slots);
        if (Interlocked.Increment(ref _waiting) > maxWaiting)
        {
            Interlocked.Decrement(ref _waiting);
            throw new AdmissionRejectedException($"{maxConcurrent} generations are running and {maxWaiting} are waiting; retry shortly");
        }

        try
        {
            await _slots.WaitAsync(cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }

        return new Slot(_slots);
    }

    private sealed class Slot(SemaphoreSlim slots) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) slots.Release();
        }
    }
}
