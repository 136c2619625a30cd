using Silk.NET.Vulkan;
using VkBuffer = Silk.NET.Vulkan.Buffer;

namespace Exo.Inference.Vulkan;

/// <summary>A buffer kernels reach by <see cref="Address"/>; host-visible ones are mapped at <see cref="Mapped"/>.</summary>
internal sealed unsafe class GpuBuffer(VulkanDevice device, VkBuffer handle, DeviceMemory memory, ulong address, long size, byte* mapped) : IDisposable
{
    private bool _disposed;

    public VkBuffer Handle { get; } = handle;
    public ulong Address { get; } = address;
    public long Size { get; } = size;
    public byte* Mapped { get; } = mapped;

    public Span<T> Host<T>(long byteOffset, int count) where T : unmanaged
    {
        if (Mapped == null) throw new InvalidOperationException("a device-local buffer has no host view");
        if (byteOffset < 0 || byteOffset + (long)count * sizeof(T) > Size) throw new ArgumentOutOfRangeException(nameof(count));
        return new Span<T>(Mapped + byteOffset, count);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        var vk = device.Vk;
        if (Mapped != null) vk.UnmapMemory(device.Device, memory);
        vk.DestroyBuffer(device.Device, Handle, null);
        vk.FreeMemory(device.Device, memory, null);
    }
}
