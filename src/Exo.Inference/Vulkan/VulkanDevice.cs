using System.Runtime.InteropServices;
using System.Text;
using Silk.NET.Vulkan;
using VkBuffer = Silk.NET.Vulkan.Buffer;

namespace Exo.Inference.Vulkan;

/// <summary>
/// A Vulkan device as the machine reports it; <see cref="Index"/> is what <c>--gpu</c> names, <see cref="ApiVersion"/>
/// the Vulkan version its driver implements (e.g. "Vulkan 1.3").
/// </summary>
public sealed record GpuInfo(int Index, string Name, GpuKind Kind, long MemoryBytes, string ApiVersion)
{
    public override string ToString() => $"{Index}: {Name} ({Kind.ToString().ToLowerInvariant()}, {MemoryBytes / (1L << 20)} MiB, {ApiVersion})";
}

public enum GpuKind
{
    Discrete,
    Integrated,
    Virtual,
    /// <summary>A CPU implementation of Vulkan (Mesa's lavapipe): correct but no faster than the CPU kernels.</summary>
    Cpu,
    Other,
}

/// <summary>No Vulkan loader, no device, or a device without what the kernels need: the message says what to do.</summary>
public sealed class GpuUnavailableException(string message) : Exception(message);

/// <summary>
/// One Vulkan device opened for compute: its queue and the allocation of buffers reached by device
/// address. Kernels need Vulkan 1.2 with buffer device addresses (every desktop driver, MoltenVK and lavapipe have them).
/// On macOS the portability extensions that MoltenVK requires are enabled when the loader offers them.
/// </summary>
public sealed unsafe class VulkanDevice : IDisposable
{
    private const string PortabilityEnumeration = "VK_KHR_portability_enumeration";
    private const string PortabilitySubset = "VK_KHR_portability_subset";
    private const string SubgroupSizeControl = "VK_EXT_subgroup_size_control";

    private readonly Lock _submit = new();

    private VulkanDevice(Vk vk, Instance instance, PhysicalDevice physical, GpuInfo info)
    {
        Vk = vk;
        Instance = instance;
        Physical = physical;
        Info = info;
        vk.GetPhysicalDeviceMemoryProperties(physical, out var memory);
        Memory = memory;
    }

    internal Vk Vk { get; }
    internal Instance Instance { get; }
    internal PhysicalDevice Physical { get; }
    internal Device Device { get; private set; }
    internal Queue Queue { get; private set; }
    internal uint QueueFamily { get; private set; }
    internal PhysicalDeviceMemoryProperties Memory { get; }

    /// <summary>Lanes of a subgroup: the workgroup size of the kernels that reduce across lanes (8 to 128).</summary>
    internal uint SubgroupSize { get; private set; }

    /// <summary>
    /// Whether pipelines must ask for whole subgroups of <see cref="SubgroupSize"/> lanes: on a device whose subgroup size
    /// varies, nothing else makes a workgroup of that many invocations one subgroup.
    /// </summary>
    internal bool RequireFullSubgroups { get; private set; }

    /// <summary>Bytes of shared memory a workgroup may use (maxComputeSharedMemorySize: 16 KiB at least).</summary>
    internal uint SharedMemoryBytes { get; private set; }

    /// <summary>Nanoseconds per timestamp tick; 0 when the compute queue cannot write timestamps.</summary>
    internal float TimestampPeriod { get; private set; }

    /// <summary>Held while a command buffer is submitted and waited for: one queue serves every stage on the device.</summary>
    internal Lock SubmitLock => _submit;

    public GpuInfo Info { get; }

    /// <summary>Every Vulkan device this machine has; empty when there is no Vulkan loader or driver.</summary>
    public static IReadOnlyList<GpuInfo> List()
    {
        try
        {
            using var scope = InstanceScope.Create();
            return scope.Devices().Select(d => d.Info).ToArray();
        }
        catch (GpuUnavailableException)
        {
            return [];
        }
    }

    /// <summary>
    /// The device chosen when none is named: the first discrete GPU, else the first integrated, virtual or other one; a
    /// CPU implementation only when <paramref name="allowCpu"/>. Null when none qualifies.
    /// </summary>
    public static GpuInfo? Preferred(IReadOnlyList<GpuInfo> devices, bool allowCpu) =>
        devices.Where(d => allowCpu || d.Kind != GpuKind.Cpu)
            .OrderBy(d => d.Kind switch { GpuKind.Discrete => 0, GpuKind.Integrated => 1, GpuKind.Virtual => 2, GpuKind.Other => 3, _ => 4 })
            .FirstOrDefault();

    /// <summary>Opens device <paramref name="index"/>, or when null the <see cref="Preferred"/> one.</summary>
    public static VulkanDevice Open(int? index = null, bool allowCpu = false)
    {
        var scope = InstanceScope.Create();
        try
        {
            var devices = scope.Devices();
            if (devices.Count == 0)
                throw new GpuUnavailableException("the Vulkan loader found no device: install your GPU's Vulkan driver (Linux: the vendor's driver or mesa-vulkan-drivers; macOS: MoltenVK), or run with --backend cpu");
            (PhysicalDevice Handle, GpuInfo Info) chosen;
            if (index is { } i)
            {
                if (i < 0 || i >= devices.Count)
                    throw new GpuUnavailableException($"--gpu {i}: this machine has {devices.Count} Vulkan device(s): {string.Join("; ", devices.Select(d => d.Info))}");
                chosen = devices[i];
            }
            else
            {
                var preferred = Preferred(devices.Select(d => d.Info).ToArray(), allowCpu)
                    ?? throw new GpuUnavailableException($"no GPU: the only Vulkan device is a CPU implementation ({devices[0].Info.Name}); name it with --gpu {devices[0].Info.Index} to use it anyway, or run with --backend cpu");
                chosen = devices[preferred.Index];
            }

            var device = new VulkanDevice(scope.Vk, scope.Instance, chosen.Handle, chosen.Info);
            scope.Keep();
            device.CreateLogicalDevice(scope.HasPortability);
            return device;
        }
        finally
        {
            scope.Dispose();
        }
    }

    private void CreateLogicalDevice(bool portability)
    {
        var vk = Vk;
        uint familyCount = 0;
        vk.GetPhysicalDeviceQueueFamilyProperties(Physical, &familyCount, null);
        var families = new QueueFamilyProperties[familyCount];
        fixed (QueueFamilyProperties* f = families) vk.GetPhysicalDeviceQueueFamilyProperties(Physical, &familyCount, f);
        var family = Array.FindIndex(families, f => (f.QueueFlags & QueueFlags.ComputeBit) != 0);
        if (family < 0) throw new GpuUnavailableException($"{Info.Name} has no compute queue");
        QueueFamily = (uint)family;

        // Subgroup size control is core from Vulkan 1.3 and an extension before it; its structures are only chained
        // where the device has one or the other.
        vk.GetPhysicalDeviceProperties(Physical, out var basic);
        var deviceExtensions = DeviceExtensions();
        var controlIsCore = basic.ApiVersion >= Vk.Version13;
        var hasControl = controlIsCore || deviceExtensions.Contains(SubgroupSizeControl);
        var control = new PhysicalDeviceSubgroupSizeControlFeatures { SType = StructureType.PhysicalDeviceSubgroupSizeControlFeatures };
        var v12 = new PhysicalDeviceVulkan12Features { SType = StructureType.PhysicalDeviceVulkan12Features, PNext = hasControl ? &control : null };
        var features2 = new PhysicalDeviceFeatures2 { SType = StructureType.PhysicalDeviceFeatures2, PNext = &v12 };
        vk.GetPhysicalDeviceFeatures2(Physical, &features2);
        var sizes = new PhysicalDeviceSubgroupSizeControlProperties { SType = StructureType.PhysicalDeviceSubgroupSizeControlProperties };
        var subgroup = new PhysicalDeviceSubgroupProperties { SType = StructureType.PhysicalDeviceSubgroupProperties, PNext = hasControl ? &sizes : null };
        var properties2 = new PhysicalDeviceProperties2 { SType = StructureType.PhysicalDeviceProperties2, PNext = &subgroup };
        vk.GetPhysicalDeviceProperties2(Physical, &properties2);
        const SubgroupFeatureFlags needed = SubgroupFeatureFlags.BasicBit | SubgroupFeatureFlags.ArithmeticBit | SubgroupFeatureFlags.ShuffleBit;
        if ((subgroup.SupportedStages & ShaderStageFlags.ComputeBit) == 0 || (subgroup.SupportedOperations & needed) != needed || subgroup.SubgroupSize is < 8 or > 128)
            throw new GpuUnavailableException($"{Info.Name} lacks the subgroup operations (arithmetic, shuffle) the GPU kernels use; run with --backend cpu");
        SubgroupSize = subgroup.SubgroupSize;

        // Kernels whose workgroup is SubgroupSize invocations reduce across it as one subgroup, which Vulkan promises
        // only when the pipeline requires full subgroups of that size. A device with one subgroup size (lavapipe,
        // NVIDIA, Apple) runs them so without asking; one without size control reports no range and is taken as such.
        RequireFullSubgroups = hasControl && control.SubgroupSizeControl && control.ComputeFullSubgroups
            && (sizes.RequiredSubgroupSizeStages & ShaderStageFlags.ComputeBit) != 0
            && SubgroupSize >= sizes.MinSubgroupSize && SubgroupSize <= sizes.MaxSubgroupSize
            && (long)sizes.MaxComputeWorkgroupSubgroups * SubgroupSize >= ComputePipelines.LargestWorkgroup;
        if (!RequireFullSubgroups && hasControl && sizes.MinSubgroupSize != sizes.MaxSubgroupSize)
        {
            throw new GpuUnavailableException(
                $"{Info.Name} runs subgroups of {sizes.MinSubgroupSize} to {sizes.MaxSubgroupSize} lanes and cannot be asked for whole subgroups of {SubgroupSize} " +
                "(subgroup size control with full compute subgroups), which the GPU kernels need; run with --backend cpu");
        }
        SharedMemoryBytes = properties2.Properties.Limits.MaxComputeSharedMemorySize;
        TimestampPeriod = families[family].TimestampValidBits > 0 ? properties2.Properties.Limits.TimestampPeriod : 0;
        if (!v12.BufferDeviceAddress)
            throw new GpuUnavailableException($"{Info.Name} lacks buffer device addresses (Vulkan 1.2), which the GPU kernels use; run with --backend cpu");

        var enableControl = new PhysicalDeviceSubgroupSizeControlFeatures { SType = StructureType.PhysicalDeviceSubgroupSizeControlFeatures, SubgroupSizeControl = true, ComputeFullSubgroups = true };
        var enable = new PhysicalDeviceVulkan12Features
        {
            SType = StructureType.PhysicalDeviceVulkan12Features,
            PNext = RequireFullSubgroups ? &enableControl : null,
            BufferDeviceAddress = true,
        };
        var priority = 1f;
        var queueInfo = new DeviceQueueCreateInfo { SType = StructureType.DeviceQueueCreateInfo, QueueFamilyIndex = QueueFamily, QueueCount = 1, PQueuePriorities = &priority };
        var extensions = new List<string>();
        if (portability && deviceExtensions.Contains(PortabilitySubset)) extensions.Add(PortabilitySubset);
        if (RequireFullSubgroups && !controlIsCore) extensions.Add(SubgroupSizeControl);
        using var names = new Utf8Strings(extensions);
        var info = new DeviceCreateInfo
        {
            SType = StructureType.DeviceCreateInfo,
            PNext = &enable,
            QueueCreateInfoCount = 1,
            PQueueCreateInfos = &queueInfo,
            EnabledExtensionCount = (uint)extensions.Count,
            PpEnabledExtensionNames = names.Pointers,
        };
        Device device;
        Check(vk.CreateDevice(Physical, &info, null, &device), "create the device");
        Device = device;
        vk.GetDeviceQueue(device, QueueFamily, 0, out var queue);
        Queue = queue;
    }

    private HashSet<string> DeviceExtensions()
    {
        uint count = 0;
        Vk.EnumerateDeviceExtensionProperties(Physical, (byte*)null, &count, null);
        var props = new ExtensionProperties[count];
        fixed (ExtensionProperties* p = props) Vk.EnumerateDeviceExtensionProperties(Physical, (byte*)null, &count, p);
        return props.Select(p => Marshal.PtrToStringUTF8((nint)p.ExtensionName)!).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>A buffer of <paramref name="bytes"/>: in the device's own memory, or mapped host memory the CPU reads and writes.</summary>
    internal GpuBuffer Allocate(long bytes, bool hostVisible)
    {
        var vk = Vk;
        var size = (ulong)Math.Max(16, (bytes + 15) & ~15L);
        var bufferInfo = new BufferCreateInfo
        {
            SType = StructureType.BufferCreateInfo,
            Size = size,
            Usage = BufferUsageFlags.StorageBufferBit | BufferUsageFlags.TransferSrcBit | BufferUsageFlags.TransferDstBit | BufferUsageFlags.ShaderDeviceAddressBit,
            SharingMode = SharingMode.Exclusive,
        };
        VkBuffer buffer;
        Check(vk.CreateBuffer(Device, &bufferInfo, null, &buffer), "create a buffer");
        vk.GetBufferMemoryRequirements(Device, buffer, out var requirements);
        var type = hostVisible
            ? MemoryType(requirements.MemoryTypeBits, MemoryPropertyFlags.HostVisibleBit | MemoryPropertyFlags.HostCoherentBit | MemoryPropertyFlags.HostCachedBit)
              ?? MemoryType(requirements.MemoryTypeBits, MemoryPropertyFlags.HostVisibleBit | MemoryPropertyFlags.HostCoherentBit)
            : MemoryType(requirements.MemoryTypeBits, MemoryPropertyFlags.DeviceLocalBit)
              ?? MemoryType(requirements.MemoryTypeBits, 0);
        if (type is null)
        {
            vk.DestroyBuffer(Device, buffer, null);
            throw new GpuUnavailableException($"{Info.Name} offers no memory type for a {(hostVisible ? "host-visible" : "device")} buffer");
        }

        var flags = new MemoryAllocateFlagsInfo { SType = StructureType.MemoryAllocateFlagsInfo, Flags = MemoryAllocateFlags.DeviceAddressBit };
        var allocInfo = new MemoryAllocateInfo { SType = StructureType.MemoryAllocateInfo, PNext = &flags, AllocationSize = requirements.Size, MemoryTypeIndex = type.Value };
        DeviceMemory memory;
        var result = vk.AllocateMemory(Device, &allocInfo, null, &memory);
        if (result != Result.Success)
        {
            vk.DestroyBuffer(Device, buffer, null);
            throw new GpuUnavailableException(result is Result.ErrorOutOfDeviceMemory or Result.ErrorOutOfHostMemory
                ? $"{Info.Name} is out of memory: {bytes / 1e6:0.0} MB more could not be allocated; give this worker fewer layers or a smaller KV cache"
                : $"allocating {bytes / 1e6:0.0} MB on {Info.Name} failed: {result}");
        }

        void* mapped = null;
        try
        {
            Check(vk.BindBufferMemory(Device, buffer, memory, 0), "bind buffer memory");
            if (hostVisible) Check(vk.MapMemory(Device, memory, 0, size, 0, &mapped), "map memory");
        }
        catch
        {
            vk.DestroyBuffer(Device, buffer, null);
            vk.FreeMemory(Device, memory, null);
            throw;
        }

        var addressInfo = new BufferDeviceAddressInfo { SType = StructureType.BufferDeviceAddressInfo, Buffer = buffer };
        var address = vk.GetBufferDeviceAddress(Device, &addressInfo);
        return new GpuBuffer(this, buffer, memory, address, (long)size, (byte*)mapped);
    }

    private uint? MemoryType(uint allowed, MemoryPropertyFlags wanted)
    {
        for (var i = 0; i < Memory.MemoryTypeCount; i++)
        {
            if ((allowed & (1u << i)) != 0 && (Memory.MemoryTypes[i].PropertyFlags & wanted) == wanted) return (uint)i;
        }

        return null;
    }

    internal static void Check(Result result, string what)
    {
        if (result != Result.Success) throw new GpuUnavailableException($"Vulkan could not {what}: {result}");
    }

    public void Dispose()
    {
        if (Device.Handle != 0)
        {
            Vk.DeviceWaitIdle(Device);
            Vk.DestroyDevice(Device, null);
        }

        Vk.DestroyInstance(Instance, null);
        Vk.Dispose();
    }

    /// <summary>A Vulkan instance that is destroyed unless a device keeps it.</summary>
    private sealed class InstanceScope : IDisposable
    {
        private bool _kept;

        private InstanceScope(Vk vk, Instance instance, bool portability)
        {
            Vk = vk;
            Instance = instance;
            HasPortability = portability;
        }

        public Vk Vk { get; }
        public Instance Instance { get; }
        public bool HasPortability { get; }

        public static InstanceScope Create()
        {
            Vk vk;
            try
            {
                vk = Vk.GetApi();
            }
            catch (Exception e) when (e is DllNotFoundException or FileNotFoundException or InvalidOperationException or TypeInitializationException)
            {
                throw new GpuUnavailableException("no Vulkan loader (libvulkan) on this machine: install it (Debian/Ubuntu: libvulkan1; macOS: brew install vulkan-loader molten-vk), or run with --backend cpu");
            }

            uint count = 0;
            vk.EnumerateInstanceExtensionProperties((byte*)null, &count, null);
            var props = new ExtensionProperties[count];
            fixed (ExtensionProperties* p = props) vk.EnumerateInstanceExtensionProperties((byte*)null, &count, p);
            var portability = props.Any(p => Marshal.PtrToStringUTF8((nint)p.ExtensionName) == PortabilityEnumeration);

            using var appName = new Utf8Strings(["exo"]);
            var app = new ApplicationInfo { SType = StructureType.ApplicationInfo, PApplicationName = appName.Pointers[0], ApiVersion = Vk.Version13 };
            using var extensions = new Utf8Strings(portability ? [PortabilityEnumeration] : []);
            var info = new InstanceCreateInfo
            {
                SType = StructureType.InstanceCreateInfo,
                PApplicationInfo = &app,
                Flags = portability ? InstanceCreateFlags.EnumeratePortabilityBitKhr : 0,
                EnabledExtensionCount = portability ? 1u : 0u,
                PpEnabledExtensionNames = extensions.Pointers,
            };
            Instance instance;
            var result = vk.CreateInstance(&info, null, &instance);
            if (result != Result.Success)
            {
                vk.Dispose();
                throw new GpuUnavailableException($"Vulkan could not create an instance ({result}): the driver may be missing or too old for Vulkan 1.2; run with --backend cpu");
            }

            return new InstanceScope(vk, instance, portability);
        }

        public List<(PhysicalDevice Handle, GpuInfo Info)> Devices()
        {
            uint count = 0;
            Vk.EnumeratePhysicalDevices(Instance, &count, null);
            var handles = new PhysicalDevice[count];
            fixed (PhysicalDevice* h = handles) Vk.EnumeratePhysicalDevices(Instance, &count, h);
            var result = new List<(PhysicalDevice, GpuInfo)>();
            foreach (var handle in handles)
            {
                Vk.GetPhysicalDeviceProperties(handle, out var props);
                if (props.ApiVersion < Vk.Version12) continue;
                Vk.GetPhysicalDeviceMemoryProperties(handle, out var memory);
                long local = 0;
                for (var i = 0; i < memory.MemoryHeapCount; i++)
                {
                    if ((memory.MemoryHeaps[i].Flags & MemoryHeapFlags.DeviceLocalBit) != 0) local = Math.Max(local, (long)memory.MemoryHeaps[i].Size);
                }

                var kind = props.DeviceType switch
                {
                    PhysicalDeviceType.DiscreteGpu => GpuKind.Discrete,
                    PhysicalDeviceType.IntegratedGpu => GpuKind.Integrated,
                    PhysicalDeviceType.VirtualGpu => GpuKind.Virtual,
                    PhysicalDeviceType.Cpu => GpuKind.Cpu,
                    _ => GpuKind.Other,
                };
                var name = Marshal.PtrToStringUTF8((nint)props.DeviceName) ?? "unknown";
                var version = $"Vulkan {props.ApiVersion >> 22}.{(props.ApiVersion >> 12) & 0x3FF}";
                result.Add((handle, new GpuInfo(result.Count, name, kind, local, version)));
            }

            return result;
        }

        public void Keep() => _kept = true;

        public void Dispose()
        {
            if (_kept) return;
            Vk.DestroyInstance(Instance, null);
            Vk.Dispose();
        }
    }

    /// <summary>Null-terminated UTF-8 copies of strings, for the pointer arrays Vulkan's create infos take.</summary>
    private sealed class Utf8Strings : IDisposable
    {
        private readonly nint[] _strings;

        public Utf8Strings(IReadOnlyList<string> values)
        {
            _strings = values.Select(v =>
            {
                var bytes = Encoding.UTF8.GetBytes(v + "\0");
                var p = Marshal.AllocHGlobal(bytes.Length);
                Marshal.Copy(bytes, 0, p, bytes.Length);
                return p;
            }).ToArray();
            Pointers = (byte**)Marshal.AllocHGlobal(Math.Max(1, _strings.Length) * sizeof(nint));
            for (var i = 0; i < _strings.Length; i++) Pointers[i] = (byte*)_strings[i];
        }

        public byte** Pointers { get; }

        public void Dispose()
        {
            foreach (var s in _strings) Marshal.FreeHGlobal(s);
            Marshal.FreeHGlobal((nint)Pointers);
        }
    }
}
