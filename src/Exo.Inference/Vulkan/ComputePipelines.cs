using System.Collections.Concurrent;
using Silk.NET.Vulkan;
using VkPipeline = Silk.NET.Vulkan.Pipeline;

namespace Exo.Inference.Vulkan;

/// <summary>
/// Every kernel's compute pipeline, built once per device from the SPIR-V embedded at build time. All share one layout:
/// no descriptor sets, only push constants (buffer addresses and sizes).
/// </summary>
internal sealed unsafe class ComputePipelines : IDisposable
{
    public const uint PushConstantBytes = 128;

    /// <summary>The most invocations any kernel's workgroup has (matmul_tiled, attention, rmsnorm, silu_mul; matmul has 4 subgroups).</summary>
    public const uint LargestWorkgroup = 256;

    private readonly VulkanDevice _device;
    private readonly Dictionary<string, byte[]> _code = new(StringComparer.Ordinal);
    // Read at every launch (hundreds a token) without a lock; written under _gate, once per kernel.
    private readonly ConcurrentDictionary<string, VkPipeline> _pipelines = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly uint _stagedLanes;

    /// <param name="device">The device the kernels run on.</param>
    /// <param name="matVec">The matrix × vector kernel's layout; by default the one for the device's kind.</param>
    public ComputePipelines(VulkanDevice device, MatVecLayout? matVec = null)
    {
        _device = device;
        MatVec = (matVec ?? MatVecLayout.For(device.Info.Kind)).Validated();
        _stagedLanes = MatVec.StagedLanes(device.SubgroupSize, device.SharedMemoryBytes);
        var vk = device.Vk;
        var range = new PushConstantRange { StageFlags = ShaderStageFlags.ComputeBit, Offset = 0, Size = PushConstantBytes };
        var layoutInfo = new PipelineLayoutCreateInfo { SType = StructureType.PipelineLayoutCreateInfo, PushConstantRangeCount = 1, PPushConstantRanges = &range };
        PipelineLayout layout;
        VulkanDevice.Check(vk.CreatePipelineLayout(device.Device, &layoutInfo, null, &layout), "create the pipeline layout");
        Layout = layout;

        var assembly = typeof(ComputePipelines).Assembly;
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith("spirv/", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            var code = new byte[stream.Length];
            stream.ReadExactly(code);
            _code[Path.GetFileNameWithoutExtension(resource)] = code;
        }

        if (_code.Count == 0) throw new GpuUnavailableException("this build carries no GPU kernels (SPIR-V); rebuild with glslc installed");
    }

    public PipelineLayout Layout { get; }

    /// <summary>The matrix × vector kernel's layout.</summary>
    public MatVecLayout MatVec { get; }

    /// <summary>
    /// The kernel's pipeline, built at its first use: a stage uses a few of the kernels (its weight types), and building
    /// one is a compilation (long on a CPU implementation).
    /// </summary>
    public VkPipeline this[string name]
    {
        get
        {
            if (_pipelines.TryGetValue(name, out var built)) return built;
            lock (_gate)
            {
                if (_pipelines.TryGetValue(name, out var pipeline)) return pipeline;
                if (!_code.TryGetValue(name, out var code)) throw new InvalidOperationException($"no GPU kernel named {name}");
                return _pipelines[name] = Create(code);
            }
        }
    }

    private VkPipeline Create(byte[] code)
    {
        var vk = _device.Vk;
        ShaderModule module;
        fixed (byte* c = code)
        {
            var moduleInfo = new ShaderModuleCreateInfo { SType = StructureType.ShaderModuleCreateInfo, CodeSize = (nuint)code.Length, PCode = (uint*)c };
            VulkanDevice.Check(vk.CreateShaderModule(_device.Device, &moduleInfo, null, &module), "create a shader module");
        }

        try
        {
            var entry = stackalloc byte[] { (byte)'m', (byte)'a', (byte)'i', (byte)'n', 0 };
            // Constant 0 is the subgroup size: the workgroup size of the kernels whose workgroup is one subgroup, and S of
            // those whose workgroup is several (attention, rmsnorm); constant 1 the matrix × vector kernel's workgroup,
            // constants 2 and 3 the lanes its batch stages at a time and the rows of a batch's pass.
            var constants = stackalloc uint[] { _device.SubgroupSize, MatVec.Subgroups * _device.SubgroupSize, _stagedLanes, MatVec.BatchPass };
            var entries = stackalloc SpecializationMapEntry[]
            {
                new(0, 0, sizeof(uint)), new(1, sizeof(uint), sizeof(uint)), new(2, 2 * sizeof(uint), sizeof(uint)), new(3, 3 * sizeof(uint), sizeof(uint)),
            };
            var specialization = new SpecializationInfo(4, entries, 4 * sizeof(uint), constants);
            var subgroupSize = _device.SubgroupSize;
            var required = new PipelineShaderStageRequiredSubgroupSizeCreateInfo { SType = StructureType.PipelineShaderStageRequiredSubgroupSizeCreateInfo, RequiredSubgroupSize = subgroupSize };
            var full = _device.RequireFullSubgroups;
            var info = new ComputePipelineCreateInfo
            {
                SType = StructureType.ComputePipelineCreateInfo,
                Stage = new PipelineShaderStageCreateInfo
                {
                    SType = StructureType.PipelineShaderStageCreateInfo,
                    PNext = full ? &required : null,
                    Flags = full ? PipelineShaderStageCreateFlags.RequireFullSubgroupsBit : 0,
                    Stage = ShaderStageFlags.ComputeBit,
                    Module = module,
                    PName = entry,
                    PSpecializationInfo = &specialization,
                },
                Layout = Layout,
            };
            VkPipeline pipeline;
            VulkanDevice.Check(vk.CreateComputePipelines(_device.Device, default, 1, &info, null, &pipeline), "create a compute pipeline");
            return pipeline;
        }
        finally
        {
            vk.DestroyShaderModule(_device.Device, module, null);
        }
    }

    public void Dispose()
    {
        foreach (var p in _pipelines.Values) _device.Vk.DestroyPipeline(_device.Device, p, null);
        _device.Vk.DestroyPipelineLayout(_device.Device, Layout, null);
    }
}
