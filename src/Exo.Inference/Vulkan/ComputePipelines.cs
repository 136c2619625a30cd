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

    /// <summary>The most invocations any kernel's workgroup has (matmul_tiled, attention, rmsnorm, add, silu_mul).</summary>
    public const uint LargestWorkgroup = 256;

    private readonly VulkanDevice _device;
    private readonly Dictionary<string, VkPipeline> _pipelines = new(StringComparer.Ordinal);

    public ComputePipelines(VulkanDevice device)
    {
        _device = device;
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
            _pipelines[Path.GetFileNameWithoutExtension(resource)] = Create(code);
        }

        if (_pipelines.Count == 0) throw new GpuUnavailableException("this build carries no GPU kernels (SPIR-V); rebuild with glslc installed");
    }

    public PipelineLayout Layout { get; }

    public VkPipeline this[string name] => _pipelines.TryGetValue(name, out var p) ? p
        : throw new InvalidOperationException($"no GPU kernel named {name}");

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
            // those whose workgroup is several (attention, rmsnorm).
            var subgroupSize = _device.SubgroupSize;
            var mapEntry = new SpecializationMapEntry(0, 0, sizeof(uint));
            var specialization = new SpecializationInfo(1, &mapEntry, sizeof(uint), &subgroupSize);
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
