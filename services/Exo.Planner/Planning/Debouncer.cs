namespace Exo.Planner.Planning;

/// <summary>
/// Runs an action once triggers stop arriving for a quiet period, so a burst of membership changes (a rack booting,
/// a flapping node) causes one re-plan instead of dozens. A burst longer than the maximum delay still runs the
/// action by then, so constant churn cannot starve it. Runs never overlap: a trigger during a run schedules another.
/// </summary>
public sealed class Debouncer : IAsyncDisposable
{
    private readonly TimeSpan _quiet;
    private readonly TimeSpan _maxDelay;
    private readonly Func<CancellationToken, Task> _action;
    private readonly Action<Exception> _onError;
    private readonly TimeProvider _time;
    private readonly ITimer _timer;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lock = new();
    private DateTimeOffset? _burstStart;
    private Task _running = Task.CompletedTask;
    private bool _isRunning;
    private bool _pendingAfterRun;
    private bool _disposed;

    public Debouncer(TimeSpan quiet, TimeSpan maxDelay, Func<CancellationToken, Task> action, Action<Exception> onError, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(quiet, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDelay, quiet);
        _quiet = quiet;
        _maxDelay = maxDelay;
        _action = action;
        _onError = onError;
        _time = time ?? TimeProvider.System;
        _timer = _time.CreateTimer(_ => Fire(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Notes a change; the action runs after the quiet period unless more changes follow.</summary>
    public void Trigger()
    {
        lock (_lock)
        {
            if (_disposed) return;
            if (_isRunning)
            {
                _pendingAfterRun = true;
                return;
            }

            Schedule();
        }
    }

    // Caller holds the lock.
    private void Schedule()
    {
        var now = _time.GetUtcNow();
        _burstStart ??= now;
        var due = _burstStart.Value + _maxDelay < now + _quiet ? _burstStart.Value + _maxDelay : now + _quiet;
        _timer.Change(due - now, Timeout.InfiniteTimeSpan);
    }

    private void Fire()
    {
        lock (_lock)
        {
            if (_disposed || _isRunning) return;
            _burstStart = null;
            _isRunning = true;
            _running = RunAsync();
        }
    }

    private async Task RunAsync()
    {
        await Task.Yield();
        try
        {
            await _action(_stopping.Token);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Disposed mid-run.
        }
        catch (Exception e)
        {
            _onError(e);
        }

        lock (_lock)
        {
            _isRunning = false;
            if (_pendingAfterRun && !_disposed)
            {
                _pendingAfterRun = false;
                Schedule();
            }
        }
    }

    /// <summary>Stops the timer, cancels a run in progress and waits for it.</summary>
    public async ValueTask DisposeAsync()
    {
        Task running;
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            running = _running;
        }

        await _timer.DisposeAsync();
        await _stopping.CancelAsync();
        await running;
        _stopping.Dispose();
    }
}
