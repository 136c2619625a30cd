using System.Threading.Channels;
using Exo.Planner.Planning;

namespace Exo.Planner.Tests;

public sealed class DebouncerTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly ManualTimeProvider _clock = new();
    private readonly Channel<DateTimeOffset> _runs = Channel.CreateUnbounded<DateTimeOffset>();
    private readonly List<Exception> _errors = [];

    private Debouncer Create(Func<CancellationToken, Task>? action = null) =>
        new(Quiet, MaxDelay, action ?? (_ => Record()), e => { lock (_errors) _errors.Add(e); }, _clock);

    private Task Record()
    {
        _runs.Writer.TryWrite(_clock.GetUtcNow());
        return Task.CompletedTask;
    }

    private async Task<DateTimeOffset> NextRun() => await _runs.Reader.ReadAsync().AsTask().WaitAsync(Patience);

    // Runs start on the thread pool, so "none happened" needs a moment of real time to be believable.
    private async Task AssertNoRun()
    {
        await Task.Delay(100);
        Assert.False(_runs.Reader.TryRead(out _), "the action ran too early");
    }

    [Fact]
    public async Task BurstOfTriggersRunsOnceAfterTheQuietPeriod()
    {
        await using var debouncer = Create();
        var start = _clock.GetUtcNow();
        for (var i = 0; i < 3; i++)
        {
            debouncer.Trigger();
            _clock.Advance(TimeSpan.FromMilliseconds(400));
        }

        // Last trigger at 0.8 s: quiet until 1.8 s.
        _clock.Advance(TimeSpan.FromMilliseconds(599));
        await AssertNoRun();
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(start + TimeSpan.FromMilliseconds(1800), await NextRun());
        _clock.Advance(TimeSpan.FromSeconds(30));
        await AssertNoRun();
    }

    [Fact]
    public async Task ConstantChurnStillRunsByTheMaximumDelay()
    {
        await using var debouncer = Create();
        var start = _clock.GetUtcNow();
        // A trigger every 0.5 s never leaves a quiet second; the tenth step reaches the 5 s limit.
        for (var i = 0; i < 10; i++)
        {
            if (i == 9) await AssertNoRun();
            debouncer.Trigger();
            _clock.Advance(TimeSpan.FromMilliseconds(500));
        }

        Assert.Equal(start + MaxDelay, await NextRun());
    }

    [Fact]
    public async Task TriggerDuringARunSchedulesAnotherRunAfterIt()
    {
        var release = new TaskCompletionSource();
        var concurrent = 0;
        var maxConcurrent = 0;
        await using var debouncer = Create(async _ =>
        {
            maxConcurrent = Math.Max(maxConcurrent, Interlocked.Increment(ref concurrent));
            await Record();
            await release.Task;
            Interlocked.Decrement(ref concurrent);
        });

        debouncer.Trigger();
        _clock.Advance(Quiet);
        await NextRun();
        debouncer.Trigger();
        _clock.Advance(TimeSpan.FromSeconds(3));
        await AssertNoRun();

        var finished = _clock.GetUtcNow();
        release.SetResult();
        // The rerun is scheduled once the first run ends, a quiet period later.
        Assert.True(await AdvanceUntilRun() >= finished + Quiet);
        Assert.Equal(1, maxConcurrent);
    }

    [Fact]
    public async Task AFailingRunIsReportedAndLaterTriggersStillRun()
    {
        var calls = 0;
        await using var debouncer = Create(async _ =>
        {
            await Record();
            if (Interlocked.Increment(ref calls) == 1) throw new InvalidOperationException("redis is down");
        });

        debouncer.Trigger();
        _clock.Advance(Quiet);
        await NextRun();
        await WaitUntil(() => { lock (_errors) return _errors.Count == 1; });
        Assert.Equal("redis is down", _errors[0].Message);

        debouncer.Trigger();
        await AdvanceUntilRun();
    }

    [Fact]
    public async Task DisposeCancelsARunInProgressAndStopsFurtherRuns()
    {
        var cancelled = new TaskCompletionSource();
        var debouncer = Create(async token =>
        {
            await Record();
            try
            {
                await Task.Delay(Timeout.Infinite, token);
            }
            finally
            {
                cancelled.SetResult();
            }
        });

        debouncer.Trigger();
        _clock.Advance(Quiet);
        await NextRun();
        await debouncer.DisposeAsync().AsTask().WaitAsync(Patience);
        Assert.True(cancelled.Task.IsCompleted);

        debouncer.Trigger();
        _clock.Advance(TimeSpan.FromSeconds(30));
        await AssertNoRun();
        Assert.Empty(_errors);
    }

    /// <summary>Moves the clock in small steps until a run happens, for runs scheduled from the thread pool at an unknown moment.</summary>
    private async Task<DateTimeOffset> AdvanceUntilRun()
    {
        var deadline = DateTime.UtcNow + Patience;
        DateTimeOffset run;
        while (!_runs.Reader.TryRead(out run))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the action never ran");
            _clock.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(5);
        }

        return run;
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met");
            await Task.Delay(5);
        }
    }
}
