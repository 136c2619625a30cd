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

    /// <summary>
    /// The device's memory bandwidth, bytes per second: a copy of <paramref name="bytes"/> between two device buffers
    /// reads and writes each byte once. The best of several runs.
    /// </summary>
    public double MeasureBandwidth(long bytes = 256L << 20)
    {
        using var stream = new CommandStream(Device, Pipelines);
        using var a = Device.Allocate(bytes, hostVisible: false);
        using var b = Device.Allocate(bytes, hostVisible: false);
        var best = double.MaxValue;
        for (var i = 0; i < 5; i++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            stream.Copy(a, 0, b, 0, bytes);
            stream.Run();
            best = Math.Min(best, clock.Elapsed.TotalSeconds);
        }

        return 2.0 * bytes / best;
    }

    /// <summary>Opens a device as <see cref="VulkanDevice.Open"/> chooses it and builds every kernel for it.</summary>
    public static GpuContext Open(int? gpu = null, bool allowCpu = false) => new(VulkanDevice.Open(gpu, allowCpu));

    public void Dispose()
    {
        Pipelines.Dispose();
        Device.Dispose();
    }
}
