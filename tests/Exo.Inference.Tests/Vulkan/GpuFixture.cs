using Exo.Inference.Vulkan;

namespace Exo.Inference.Tests.Vulkan;

/// <summary>
/// The machine's Vulkan device for the GPU tests: in CI, Mesa's lavapipe (a CPU implementation of Vulkan, installed by
/// .ci/run), so any device is accepted. No device is a failure, not a skip.
/// </summary>
public sealed class GpuFixture : IDisposable
{
    public GpuFixture() => Context = GpuContext.Open(allowCpu: true);

    public GpuContext Context { get; }

    public void Dispose() => Context.Dispose();
}
