using Exo.Inference.Model;
using Exo.Inference.Sampling;

namespace Exo.Inference.Generation;

/// <summary>Why a generation ended.</summary>
public enum FinishReason
{
    /// <summary>The model produced one of its end-of-sequence tokens.</summary>
    Stop,
    /// <summary>The token limit or the context was reached.</summary>
    Length,
}

/// <summary>One generated token, or the end of the generation.</summary>
public readonly record struct GeneratedToken(int Token, FinishReason? Finish);

/// <summary>
/// Single-process generation on a whole model: prefill the prompt, then sample one token per step until an
/// end-of-sequence token, the token limit or the context's end. The cluster does the same round a ring of stages.
/// </summary>
public sealed class Generator(IModelStage model)
{
    public IModelStage Model { get; } = model.IsFirst && model.IsLast ? model
        : throw new ArgumentException($"generation needs the whole model; this stage holds layers {model.Layers}", nameof(model));

    /// <summary>
    /// Yields each new token; the last item carries the finish reason (and, for <see cref="FinishReason.Stop"/>, the
    /// end-of-sequence token itself, which callers usually do not print).
    /// </summary>
    public IEnumerable<GeneratedToken> Generate(IReadOnlyList<int> prompt, SamplingParameters sampling, int maxNewTokens,
        IReadOnlySet<int> endTokens, CancellationToken cancellationToken = default)
    {
        if (prompt.Count == 0) throw new ArgumentException("the prompt has no tokens", nameof(prompt));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxNewTokens);
        var context = Model.Config.MaxPositionEmbeddings;
        if (prompt.Count >= context)
            throw new ArgumentException($"the prompt has {prompt.Count} tokens; the model's context is {context}", nameof(prompt));

        var budget = Math.Min(maxNewTokens, context - prompt.Count);
        using var cache = Model.CreateCache(prompt.Count + budget);
        var sampler = new Sampler(sampling, Model.Config.VocabSize);
        var promptTokens = prompt.ToArray();
        sampler.Observe(promptTokens);

        var logits = new float[Model.Config.VocabSize];     // [vocab]
        int[] next = [0];
        Model.ForwardTokens([new SequenceChunk(cache, promptTokens.Length)], promptTokens, logits);
        for (var produced = 1; ; produced++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var token = sampler.Sample(logits);
            if (endTokens.Contains(token))
            {
                yield return new GeneratedToken(token, FinishReason.Stop);
                yield break;
            }

            if (produced == budget)
            {
                yield return new GeneratedToken(token, FinishReason.Length);
                yield break;
            }

            yield return new GeneratedToken(token, null);
            next[0] = token;
            Model.ForwardTokens([new SequenceChunk(cache, 1)], next, logits);
        }
    }
}
