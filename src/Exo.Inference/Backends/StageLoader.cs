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
    // One context per device and process: every stage on a GPU shares its queue and kernels.
    private static readonly ConcurrentDictionary<(int?, bool), Lazy<GpuContext>> s_contexts = new();

    /// <summary>
    /// A stage of layers <paramref name="layers"/> (all when null). <c>auto</c> takes a discrete or integrated GPU and
    /// falls back to the CPU; it never takes a CPU implementation of Vulkan unless <c>--gpu</c> names it. An explicit
    /// <c>vulkan</c> fails with the reason when there is no usable device, and accepts a CPU implementation (as in CI).
    /// </summary>
    public static IModelStage Load(string modelPath, LayerRange? layers, BackendOptions options, DType? quantize = null)
    {
        if (options.Kind == BackendKind.Cpu || (options.Kind == BackendKind.Auto && options.Gpu is null && Gpu(null, allowCpu: false) is null))
            return ModelStage.Load(modelPath, layers, options.CpuKernels, quantize);

        var context = Gpu(options.Gpu, allowCpu: options.Kind == BackendKind.Vulkan || options.Gpu is not null, throwIfNone: true)!;
        return VulkanStage.Load(context, modelPath, layers, quantize);
    }

    /// <summary>
    /// The GPU stages of this choice will run on, with its bandwidth measured; null when they run on the CPU. Fails with
    /// the reason when the choice names a GPU that cannot be used.
    /// </summary>
    public static ComputeDevice? Device(BackendOptions options)
    {
        if (options.Kind == BackendKind.Cpu) return null;
        var explicitGpu = options.Kind == BackendKind.Vulkan || options.Gpu is not null;
        if (Gpu(options.Gpu, allowCpu: explicitGpu, throwIfNone: explicitGpu) is not { } context) return null;
        var info = context.Device.Info;
        return new ComputeDevice(info.Name, info.Kind, info.MemoryBytes, context.MeasureBandwidth());
    }

    /// <summary>The shared context of a device, or null (or the reason, when <paramref name="throwIfNone"/>) when there is none.</summary>
    private static GpuContext? Gpu(int? index, bool allowCpu, bool throwIfNone = false)
    {
        var lazy = s_contexts.GetOrAdd((index, allowCpu), key => new Lazy<GpuContext>(() => GpuContext.Open(key.Item1, key.Item2)));
        try
        {
            return lazy.Value;
        }
        catch (GpuUnavailableException) when (!throwIfNone)
        {
            return null;
        }
    }
}
