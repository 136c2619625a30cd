namespace Exo.Inference.Vulkan;

/// <summary>
/// GPU time per kernel, from timestamps the device writes after each launch and copy (so a launch's time includes
/// the wait for the barrier before it): what <c>exo bench --profile</c> prints.
/// </summary>
public sealed class KernelProfile
{
    private readonly Dictionary<string, (double Nanoseconds, long Launches)> _kernels = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Where kernel times go, for stages created while it is set: <c>exo bench --profile</c> sets it.</summary>
    public static KernelProfile? Active { get; set; }

    internal void Add(string kernel, double nanoseconds)
    {
        lock (_gate)
        {
            var (ns, n) = _kernels.GetValueOrDefault(kernel);
            _kernels[kernel] = (ns + nanoseconds, n + 1);
        }
    }

    public void Clear()
    {
        lock (_gate) _kernels.Clear();
    }

    /// <summary>Kernels by total GPU time, longest first.</summary>
    public IReadOnlyList<(string Kernel, double Milliseconds, long Launches)> Totals()
    {
        lock (_gate) return _kernels.Select(k => (k.Key, k.Value.Nanoseconds / 1e6, k.Value.Launches)).OrderByDescending(k => k.Item2).ToList();
    }
}
