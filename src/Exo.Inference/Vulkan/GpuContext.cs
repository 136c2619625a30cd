namespace Exo.Inference.Vulkan;

/// <summary>An opened GPU with its kernels built: shared by every stage a process runs on that device.</summary>
public sealed class GpuContext : IDisposable
{
    private GpuContext(VulkanDevice device)
    {
        Device = device;
        try
        {
            Pipelines = new ComputePipelines(device);
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    public VulkanDevice Device { get; }
    internal ComputePipelines Pipelines { get; }

    /// <summary>Opens a device as <see cref="VulkanDevice.Open"/> chooses it and builds every kernel for it.</summary>
    public static GpuContext Open(int? gpu = null, bool allowCpu = false) => new(VulkanDevice.Open(gpu, allowCpu));

    public void Dispose()
    {
        Pipelines.Dispose();
        Device.Dispose();
    }
}
