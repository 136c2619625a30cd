using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Exo.ShardWorker.Node;

/// <summary>What this machine can do, measured in a fraction of a second at start so the planner can weigh nodes.</summary>
public static class MachineProbe
{
    /// <summary>
    /// Sustained read bandwidth in bytes per second, with the engine's own probe: decoding a token reads every weight
    /// once, so this is what a stage's speed is bound by. Short (a buffer above any last-level cache, three passes).
    /// </summary>
    public static double ReadBandwidth() => Inference.Kernels.MemoryBandwidth.Measure(Environment.ProcessorCount, 384L << 20, repetitions: 3);

    /// <summary>f32 multiply-adds per second over all cores, from a loop that stays in registers.</summary>
    public static double Flops(TimeSpan duration)
    {
        var threads = Environment.ProcessorCount;
        var operations = new long[threads];
        var clock = Stopwatch.StartNew();
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t => operations[t] = MultiplyAdd(duration));
        return operations.Sum() / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Total and available physical memory: /proc/meminfo on Linux, the runtime's view elsewhere.</summary>
    public static (long Total, long Available) Memory()
    {
        if (OperatingSystem.IsLinux() && File.Exists("/proc/meminfo"))
        {
            long total = 0, available = 0;
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal)) total = Kilobytes(line);
                else if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)) available = Kilobytes(line);
            }

            if (total > 0 && available > 0) return (total, available);
        }

        var info = GC.GetGCMemoryInfo();
        return (info.TotalAvailableMemoryBytes, Math.Max(0, info.TotalAvailableMemoryBytes - info.MemoryLoadBytes));
    }

    public static string Arch => RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant();

    public static string Os => OperatingSystem.IsMacOS() ? "macos" : OperatingSystem.IsLinux() ? "linux" : OperatingSystem.IsWindows() ? "windows" : "other";

    private static long Kilobytes(string line)
    {
        var digits = new string(line.Where(char.IsAsciiDigit).ToArray());
        return long.TryParse(digits, out var kb) ? kb * 1024 : 0;
    }

    private static long MultiplyAdd(TimeSpan duration)
    {
        var x = new Vector<float>(1.0001f);
        Vector<float> a = Vector<float>.One, b = a, c = a, d = a;
        const int Rounds = 1 << 16;
        long done = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration)
        {
            for (var i = 0; i < Rounds; i++)
            {
                a = Vector.FusedMultiplyAdd(a, x, x);
                b = Vector.FusedMultiplyAdd(b, x, x);
                c = Vector.FusedMultiplyAdd(c, x, x);
                d = Vector.FusedMultiplyAdd(d, x, x);
            }

            done += 4L * Rounds * Vector<float>.Count * 2;
        }

        // Keeps the loop from being optimised away.
        return Vector.Sum(a + b + c + d) == 0 ? done + 1 : done;
    }
}
