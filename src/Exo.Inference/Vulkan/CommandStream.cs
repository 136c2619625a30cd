using Silk.NET.Vulkan;

namespace Exo.Inference.Vulkan;

/// <summary>
/// Records kernel launches, copies and barriers into one command buffer and runs them: a whole stage step is one
/// submission, and the host waits only for its end.
/// </summary>
internal sealed unsafe class CommandStream : IDisposable
{
    /// <summary>Most workgroups in one dimension that every Vulkan device must accept.</summary>
    private const uint MaxGroupsX = 65535;

    private readonly VulkanDevice _device;
    private readonly ComputePipelines _pipelines;
    private readonly CommandPool _pool;
    private readonly CommandBuffer _buffer;
    private readonly Fence _fence;
    private bool _recording;

    // Profiling only: a timestamp after each command, and each command's name.
    private const uint MaxTimestamps = 8192;
    private readonly QueryPool _timestamps;
    private readonly List<string> _timed = [];

    public CommandStream(VulkanDevice device, ComputePipelines pipelines)
    {
        _device = device;
        _pipelines = pipelines;
        var vk = device.Vk;
        // A pool of its own: command pools may not be used from two threads at once, and each stage records on its own.
        var poolInfo = new CommandPoolCreateInfo { SType = StructureType.CommandPoolCreateInfo, QueueFamilyIndex = device.QueueFamily, Flags = CommandPoolCreateFlags.ResetCommandBufferBit };
        CommandPool pool;
        VulkanDevice.Check(vk.CreateCommandPool(device.Device, &poolInfo, null, &pool), "create a command pool");
        _pool = pool;
        var allocInfo = new CommandBufferAllocateInfo { SType = StructureType.CommandBufferAllocateInfo, CommandPool = pool, Level = CommandBufferLevel.Primary, CommandBufferCount = 1 };
        CommandBuffer buffer;
        VulkanDevice.Check(vk.AllocateCommandBuffers(device.Device, &allocInfo, &buffer), "allocate a command buffer");
        _buffer = buffer;
        var fenceInfo = new FenceCreateInfo { SType = StructureType.FenceCreateInfo };
        Fence fence;
        VulkanDevice.Check(vk.CreateFence(device.Device, &fenceInfo, null, &fence), "create a fence");
        _fence = fence;
        if (KernelProfile.Active is not null && device.TimestampPeriod > 0)
        {
            var queryInfo = new QueryPoolCreateInfo { SType = StructureType.QueryPoolCreateInfo, QueryType = QueryType.Timestamp, QueryCount = MaxTimestamps };
            QueryPool pool2;
            VulkanDevice.Check(vk.CreateQueryPool(device.Device, &queryInfo, null, &pool2), "create a timestamp pool");
            _timestamps = pool2;
        }
    }

    /// <summary>The matrix × vector kernel's layout, which sets its launch geometry.</summary>
    public MatVecLayout MatVec => _pipelines.MatVec;

    /// <summary>Whether launches are timed (exo bench --profile): only then is a launch's label worth making.</summary>
    public bool Timing => _timestamps.Handle != 0;

    private void Stamp(string what)
    {
        if (!Timing || _timed.Count + 1 >= MaxTimestamps) return;
        _timed.Add(what);
        _device.Vk.CmdWriteTimestamp(_buffer, PipelineStageFlags.BottomOfPipeBit, _timestamps, (uint)_timed.Count);
    }

    private void Begin()
    {
        if (_recording) return;
        var info = new CommandBufferBeginInfo { SType = StructureType.CommandBufferBeginInfo, Flags = CommandBufferUsageFlags.OneTimeSubmitBit };
        VulkanDevice.Check(_device.Vk.BeginCommandBuffer(_buffer, &info), "begin a command buffer");
        _recording = true;
        if (Timing)
        {
            _timed.Clear();
            _device.Vk.CmdResetQueryPool(_buffer, _timestamps, 0, MaxTimestamps);
            _device.Vk.CmdWriteTimestamp(_buffer, PipelineStageFlags.BottomOfPipeBit, _timestamps, 0);
        }
    }

    /// <summary>
    /// Launches <paramref name="groups"/> workgroups of kernel <paramref name="kernel"/> with its push constants; a profile
    /// counts it under <paramref name="label"/> where given, else under the kernel's name.
    /// </summary>
    public void Dispatch<T>(string kernel, in T push, long groups, string? label = null) where T : unmanaged
    {
        if (groups <= 0) return;
        if (sizeof(T) > ComputePipelines.PushConstantBytes) throw new InvalidOperationException($"{typeof(T).Name} is larger than the push constants");
        Begin();
        var vk = _device.Vk;
        vk.CmdBindPipeline(_buffer, PipelineBindPoint.Compute, _pipelines[kernel]);
        fixed (T* p = &push) vk.CmdPushConstants(_buffer, _pipelines.Layout, ShaderStageFlags.ComputeBit, 0, (uint)sizeof(T), p);
        var x = (uint)Math.Min(groups, MaxGroupsX);
        var y = (uint)((groups + x - 1) / x);
        vk.CmdDispatch(_buffer, x, y, 1);
        Stamp(label ?? kernel);
    }

    /// <summary>Copies bytes between buffers (host-visible or not) in stream order.</summary>
    public void Copy(GpuBuffer source, long sourceOffset, GpuBuffer destination, long destinationOffset, long bytes)
    {
        if (bytes <= 0) return;
        Begin();
        var region = new BufferCopy((ulong)sourceOffset, (ulong)destinationOffset, (ulong)bytes);
        _device.Vk.CmdCopyBuffer(_buffer, source.Handle, destination.Handle, 1, &region);
        Stamp("copy");
    }

    /// <summary>Makes everything recorded so far visible to everything recorded after.</summary>
    public void Barrier()
    {
        Begin();
        var barrier = new MemoryBarrier
        {
            SType = StructureType.MemoryBarrier,
            SrcAccessMask = AccessFlags.ShaderWriteBit | AccessFlags.TransferWriteBit,
            DstAccessMask = AccessFlags.ShaderReadBit | AccessFlags.ShaderWriteBit | AccessFlags.TransferReadBit | AccessFlags.TransferWriteBit | AccessFlags.HostReadBit,
        };
        var stages = PipelineStageFlags.ComputeShaderBit | PipelineStageFlags.TransferBit;
        _device.Vk.CmdPipelineBarrier(_buffer, stages, stages | PipelineStageFlags.HostBit, 0, 1, &barrier, 0, null, 0, null);
    }

    /// <summary>Submits what was recorded and waits for it to finish.</summary>
    public void Run()
    {
        if (!_recording) return;
        var vk = _device.Vk;
        _recording = false;
        VulkanDevice.Check(vk.EndCommandBuffer(_buffer), "end a command buffer");
        var buffer = _buffer;
        var submit = new SubmitInfo { SType = StructureType.SubmitInfo, CommandBufferCount = 1, PCommandBuffers = &buffer };
        var fence = _fence;
        lock (_device.SubmitLock)
        {
            VulkanDevice.Check(vk.QueueSubmit(_device.Queue, 1, &submit, fence), "submit work");
        }

        var waited = vk.WaitForFences(_device.Device, 1, &fence, true, ulong.MaxValue);
        vk.ResetFences(_device.Device, 1, &fence);
        vk.ResetCommandBuffer(_buffer, 0);
        if (waited != Result.Success)
            throw new GpuUnavailableException(waited == Result.ErrorDeviceLost ? $"{_device.Info.Name} was lost (driver reset or crash); restart the worker" : $"waiting for the GPU failed: {waited}");
        if (Timing && _timed.Count > 0) CollectTimes();
    }

    /// <summary>Drops what was recorded and not run (a step that failed midway), so the next step does not submit it.</summary>
    public void Abandon()
    {
        _timed.Clear();
        if (!_recording) return;
        _recording = false;
        var vk = _device.Vk;
        vk.EndCommandBuffer(_buffer);
        vk.ResetCommandBuffer(_buffer, 0);
    }

    private void CollectTimes()
    {
        var stamps = new ulong[_timed.Count + 1];
        fixed (ulong* s = stamps)
        {
            var result = _device.Vk.GetQueryPoolResults(_device.Device, _timestamps, 0, (uint)stamps.Length, (nuint)(stamps.Length * sizeof(ulong)), s,
                sizeof(ulong), QueryResultFlags.Result64Bit | QueryResultFlags.ResultWaitBit);
            if (result != Result.Success) return;
        }

        for (var i = 0; i < _timed.Count; i++) KernelProfile.Active?.Add(_timed[i], (stamps[i + 1] - stamps[i]) * _device.TimestampPeriod);
    }

    public void Dispose()
    {
        var vk = _device.Vk;
        var buffer = _buffer;
        vk.DestroyFence(_device.Device, _fence, null);
        if (Timing) vk.DestroyQueryPool(_device.Device, _timestamps, null);
        vk.FreeCommandBuffers(_device.Device, _pool, 1, &buffer);
        vk.DestroyCommandPool(_device.Device, _pool, null);
    }
}
