using System.Collections.Concurrent;
using Exo.Inference.Kernels;
using Exo.Inference.Model;
using Exo.Inference.Vulkan;
using Exo.Inference.Weights;

namespace Exo.Inference.Backends;

/// <summary>Where a stage computes: <c>auto</c> takes a GPU when the machine has one, else the CPU.</summary>
public enum BackendKind
{
    Auto,
    Cpu,
    Vulkan,
}

/// <summary>
/// A backend choice as <c>--backend</c> and <c>--gpu</c> give it. <paramref name="CpuKernels"/> are the kernels a CPU
/// stage runs on (the fast ones when null).
/// </summary>
public sealed record BackendOptions(BackendKind Kind = BackendKind.Auto, int? Gpu = null, IKernels? CpuKernels = null)
{
    /// <summary>The CPU with the given kernels (the fast ones when null).</summary>
    public static BackendOptions Cpu(IKernels? kernels = null) => new(BackendKind.Cpu, null, kernels);

    public static BackendKind Parse(string text) => text.ToLowerInvariant() switch
    {
        "auto" => BackendKind.Auto,
        "cpu" => BackendKind.Cpu,
        "vulkan" or "gpu" => BackendKind.Vulkan,
        _ => throw new ArgumentException($"unknown backend '{text}': choose auto, cpu or vulkan"),
    };
}

/// <summary>The GPU a backend choice runs on, as a node registers it: its memory and measured bandwidth.</summary>
public sealed record ComputeDevice(string Name, GpuKind Kind, long MemoryBytes, double BandwidthBytesPerSecond);

/// <summary>Loads a stage on the backend a choice names; the only place that turns a choice into a device.</summary>
public static class StageLoader
{
    // The machine's devices, listed once; one context per device and process: every stage on a GPU shares its queue
    // and kernels, whichever choice named it.
    private static readonly Lazy<IReadOnlyList<GpuInfo>> s_devices = new(VulkanDevice.List);
    private static readonly ConcurrentDictionary<int, Lazy<GpuContext>> s_contexts = new();

    /// <summary>
    /// A stage of layers <paramref name="layers"/> (all when null). <c>auto</c> takes a discrete or integrated GPU and
    /// falls back to the CPU; it never takes a CPU implementation of Vulkan unless <c>--gpu</c> names it. An explicit
    /// <c>vulkan</c> fails with the reason when there is no usable device, and accepts a CPU implementation (as in CI).
    /// </summary>
    public static IModelStage Load(string modelPath, LayerRange? layers, BackendOptions options, DType? quantize = null) =>
        Gpu(options) is { } context
            ? VulkanStage.Load(context, modelPath, layers, quantize)
            : ModelStage.Load(modelPath, layers, options.CpuKernels, quantize);

    /// <summary>
    /// The GPU stages of this choice will run on, with its bandwidth measured; null when they run on the CPU. Fails with
    /// the reason when the choice names a GPU that cannot be used.
    /// </summary>
    public static ComputeDevice? Device(BackendOptions options)
    {
        if (Gpu(options) is not { } context) return null;
        var info = context.Device.Info;
        return new ComputeDevice(info.Name, info.Kind, info.MemoryBytes, context.MeasureBandwidth());
    }

    /// <summary>The shared context of the device a choice runs on; null for the CPU, the reason when a named GPU cannot be used.</summary>
    private static GpuContext? Gpu(BackendOptions options)
    {
        if (options.Kind == BackendKind.Cpu) return null;
        var named = options.Kind == BackendKind.Vulkan || options.Gpu is not null;
        var index = options.Gpu ?? VulkanDevice.Preferred(s_devices.Value, allowCpu: named)?.Index;
        if (index is null && !named) return null;
        // A named device that is missing is opened anyway, so that the error says why (no loader, no device, index out of range).
        var key = index ?? -1;
        return s_contexts.GetOrAdd(key, i => new Lazy<GpuContext>(() => GpuContext.Open(i < 0 ? null : i, allowCpu: true))).Value;
    }
}
