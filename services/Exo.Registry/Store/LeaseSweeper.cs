using Microsoft.Extensions.Logging;

namespace Exo.Registry.Store;

/// <summary>Runs a store's expiry sweep every interval until disposed; a failed sweep is logged and the next one tries again.</summary>
internal sealed class LeaseSweeper : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public LeaseSweeper(TimeSpan interval, TimeProvider time, Func<CancellationToken, Task> sweep, ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        _loop = RunAsync(interval, time, sweep, logger, _stop.Token);
    }

    private static async Task RunAsync(TimeSpan interval, TimeProvider time, Func<CancellationToken, Task> sweep, ILogger logger,
        CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                try
                {
                    await sweep(cancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning(e, "lease sweep failed; retrying in {Interval}", interval);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Disposed.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}
