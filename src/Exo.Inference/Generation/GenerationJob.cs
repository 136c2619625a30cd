using Exo.Inference.Sampling;

namespace Exo.Inference.Generation;

/// <summary>One generation of a batch: its prompt, sampling, token limit and, optionally, the structure of its output.</summary>
public sealed record GenerationJob(IReadOnlyList<int> Prompt, SamplingParameters Sampling, int MaxNewTokens, StructuredOutput? Output = null);
