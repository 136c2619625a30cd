using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Exo.Inference.Kernels;

/// <summary>
/// Measures the machine's memory read bandwidth the way the llama.cpp benchmark harness does: a buffer far larger than
/// the last-level cache, first touched by the threads that later read it, one untimed pass, then the best of several
/// timed parallel sums. Decode speed is judged against this number (weight bytes per token ÷ bandwidth).
/// </summary>
public static unsafe class MemoryBandwidth
{
    /// <summary>Bytes per second read by <paramref name="threads"/> threads streaming <paramref name="bytes"/>.</summary>
    public static double Measure(int threads, long bytes = 1L << 30, int repetitions = 5)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threads);
        ArgumentOutOfRangeException.ThrowIfLessThan(bytes, 1L << 20);
        var floats = bytes / sizeof(float) / 64 * 64;
        var buffer = (float*)NativeMemory.AlignedAlloc((nuint)(floats * sizeof(float)), 64);
        try
        {
            using var pool = new WorkerPool(threads);
            var chunks = threads * 64;
            var sum = new ReadJob(buffer, floats / chunks, threads);
            pool.For(chunks, new FillJob(buffer, floats / chunks));
            pool.For(chunks, sum);
            var best = double.MaxValue;
            for (var r = 0; r < repetitions; r++)
            {
                var start = Stopwatch.GetTimestamp();
                pool.For(chunks, sum);
                best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalSeconds);
            }

            // The sums are kept so the reads cannot be optimised away.
            GC.KeepAlive(sum.Total);
            return floats / chunks * chunks * sizeof(float) / best;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    private sealed class FillJob(float* buffer, long chunk) : IParallelWork
    {
        public void Run(int worker, int start, int end) =>
            new Span<float>(buffer + start * chunk, checked((int)((end - start) * chunk))).Fill(1f);
    }

    private sealed class ReadJob(float* buffer, long chunk, int workers) : IParallelWork
    {
        private readonly float[] _partials = new float[workers];

        public float Total => _partials.Sum();

        public void Run(int worker, int start, int end)
        {
            Vector256<float> a = default, b = default, c = default, d = default;
            float* p = buffer + start * chunk, stop = buffer + end * chunk;
            for (; p < stop; p += 32)
            {
                a += Vector256.Load(p);
                b += Vector256.Load(p + 8);
                c += Vector256.Load(p + 16);
                d += Vector256.Load(p + 24);
            }

            _partials[worker] = Vector256.Sum(a + b + c + d);
        }
    }
}
