using Exo.Inference.Backends;

namespace Exo.ShardWorker.Node;

/// <summary>Where this worker's layers run: the backend choice, and the GPU it resolved to (null: the CPU).</summary>
public sealed record WorkerCompute(BackendOptions Backend, ComputeDevice? Gpu);
