namespace Exo.Inference.Kernels;

/// <summary>A piece of parallel work: handles items [start, end) on the given worker (0 = the calling thread).</summary>
internal interface IParallelWork
{
    void Run(int worker, int start, int end);
}

/// <summary>
/// Dedicated threads for the kernels' parallel loops. A loop costs a few microseconds: workers spin briefly on a
/// generation counter after each loop (decode issues hundreds of loops per token, back to back) and only then block,
/// and items are split in static contiguous chunks, one per thread, so nothing is queued or allocated per loop.
/// </summary>
internal sealed class WorkerPool : IDisposable
{
    // Spinning spans the serial work between two loops of one token; longer would steal a busy machine's cores.
    private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 20_000; // 50 µs

    private readonly Thread[] _threads;
    private readonly Lock _dispatch = new();
    private readonly object _sleep = new();
    private IParallelWork? _work;
    private int _items;
    private long _generation;
    private int _pending;
    private int _sleepers;
    private volatile bool _stopping;
    private Exception? _failure;

    public WorkerPool(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        Threads = threads;
        _threads = new Thread[threads - 1];
        for (var i = 0; i < _threads.Length; i++)
        {
            var worker = i + 1;
            _threads[i] = new Thread(() => Loop(worker)) { IsBackground = true, Name = $"exo-kernel-{worker}" };
            _threads[i].Start();
        }
    }

    public int Threads { get; }

    /// <summary>Runs work over items [0, count) on every thread and returns when all chunks are done.</summary>
    public void For(int count, IParallelWork work)
    {
        if (count <= 0) return;
        if (Threads == 1 || count == 1)
        {
            work.Run(0, 0, count);
            return;
        }

        // One loop at a time: two callers sharing the pool take turns rather than oversubscribing the cores.
        lock (_dispatch)
        {
            _work = work;
            _items = count;
            _failure = null;
            Volatile.Write(ref _pending, _threads.Length);
            Interlocked.Increment(ref _generation);
            if (Volatile.Read(ref _sleepers) > 0)
            {
                lock (_sleep) Monitor.PulseAll(_sleep);
            }

            var (start, end) = Chunk(0, count);
            try
            {
                work.Run(0, start, end);
            }
            finally
            {
                var spinner = new SpinWait();
                while (Volatile.Read(ref _pending) != 0) spinner.SpinOnce(sleep1Threshold: -1);
                _work = null;
            }

            if (_failure is { } failure) throw new AggregateException("a kernel worker failed", failure);
        }
    }

    private (int Start, int End) Chunk(int worker, int count) =>
        ((int)((long)count * worker / Threads), (int)((long)count * (worker + 1) / Threads));

    private void Loop(int worker)
    {
        long seen = 0;
        while (true)
        {
            long generation;
            var spinUntil = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
            while ((generation = Volatile.Read(ref _generation)) == seen && !_stopping)
            {
                if (System.Diagnostics.Stopwatch.GetTimestamp() < spinUntil)
                {
                    Thread.SpinWait(8);
                    continue;
                }

                lock (_sleep)
                {
                    Interlocked.Increment(ref _sleepers);
                    while (Volatile.Read(ref _generation) == seen && !_stopping) Monitor.Wait(_sleep);
                    Interlocked.Decrement(ref _sleepers);
                }
            }

            if (_stopping) return;
            seen = generation;
            var (start, end) = Chunk(worker, _items);
            try
            {
                if (start < end) _work!.Run(worker, start, end);
            }
            catch (Exception e)
            {
                _failure = e;
            }
            finally
            {
                Interlocked.Decrement(ref _pending);
            }
        }
    }

    public void Dispose()
    {
        _stopping = true;
        lock (_sleep) Monitor.PulseAll(_sleep);
        foreach (var thread in _threads) thread.Join();
    }
}
