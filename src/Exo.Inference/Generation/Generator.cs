using Exo.Inference.Model;
using Exo.Inference.Sampling;
using Exo.Text.Constraints;

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
        IReadOnlySet<int> endTokens, CancellationToken cancellationToken = default) =>
        Generate(prompt, sampling, maxNewTokens, endTokens, null, cancellationToken);

    /// <summary>
    /// As above; with <paramref name="output"/> every token obeys its grammar, whose text is whole by the last token
    /// the limit allows (a grammar whose shortest text does not fit throws <see cref="GrammarException"/>). Once the
    /// text is whole and nothing may follow, generation stops even if the model has no end tokens.
    /// </summary>
    public IEnumerable<GeneratedToken> Generate(IReadOnlyList<int> prompt, SamplingParameters sampling, int maxNewTokens,
        IReadOnlySet<int> endTokens, StructuredOutput? output, CancellationToken cancellationToken = default)
    {
        using var run = new Run(Model, new GenerationJob(prompt, sampling, maxNewTokens, output), endTokens);
        var logits = new float[Model.Config.VocabSize];     // [vocab]
        int[] next = [0];
        Model.ForwardTokens([new SequenceChunk(run.Cache, run.Prompt.Length)], run.Prompt, logits);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var step = run.Next(logits);
            yield return step;
            if (step.Finish is not null) yield break;
            next[0] = step.Token;
            Model.ForwardTokens([new SequenceChunk(run.Cache, 1)], next, logits);
        }
    }

    /// <summary>
    /// Runs several generations in lock step, one batched forward pass per step for all that are still going: the
    /// same tokens per request as <see cref="Generate(IReadOnlyList{int}, SamplingParameters, int, IReadOnlySet{int}, StructuredOutput?, CancellationToken)"/>
    /// up to the batch's rounding, at a fraction of the passes. Every request's cache is held until all end.
    /// </summary>
    public List<GeneratedToken>[] GenerateBatch(IReadOnlyList<GenerationJob> jobs, IReadOnlySet<int> endTokens, CancellationToken cancellationToken = default)
    {
        var runs = new List<Run>(jobs.Count);
        try
        {
            foreach (var job in jobs) runs.Add(new Run(Model, job, endTokens));
            var vocab = Model.Config.VocabSize;
            var logits = new float[runs.Count * vocab];     // [active sequences, vocab]
            var results = runs.Select(_ => new List<GeneratedToken>()).ToArray();
            Model.ForwardTokens([.. runs.Select(r => new SequenceChunk(r.Cache, r.Prompt.Length))], [.. runs.SelectMany(r => r.Prompt)], logits);
            var active = Enumerable.Range(0, runs.Count).ToList();
            while (active.Count > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var going = new List<int>(active.Count);
                var tokens = new List<int>(active.Count);
                for (var row = 0; row < active.Count; row++)
                {
                    var step = runs[active[row]].Next(logits.AsSpan(row * vocab, vocab));
                    results[active[row]].Add(step);
                    if (step.Finish is not null) continue;
                    going.Add(active[row]);
                    tokens.Add(step.Token);
                }
                active = going;
                if (active.Count > 0) Model.ForwardTokens([.. active.Select(i => new SequenceChunk(runs[i].Cache, 1))], [.. tokens], logits);
            }
            return results;
        }
        finally
        {
            foreach (var run in runs) run.Dispose();
        }
    }

    /// <summary>One generation's cache, sampler and count, and the rule for when it ends.</summary>
    private sealed class Run : IDisposable
    {
        private readonly Sampler _sampler;
        private readonly TokenConstraint? _constraint;
        private readonly IReadOnlySet<int> _endTokens;
        private readonly int _budget;
        private int _produced;

        public Run(IModelStage model, GenerationJob job, IReadOnlySet<int> endTokens)
        {
            if (job.Prompt.Count == 0) throw new ArgumentException("the prompt has no tokens", nameof(job));
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(job.MaxNewTokens);
            var context = model.Config.MaxPositionEmbeddings;
            if (job.Prompt.Count >= context)
                throw new ArgumentException($"the prompt has {job.Prompt.Count} tokens; the model's context is {context}", nameof(job));

            _budget = Math.Min(job.MaxNewTokens, context - job.Prompt.Count);
            _endTokens = endTokens;
            _constraint = job.Output?.Grammar.Start(job.Output.Vocabulary, endTokens, _budget);
            _sampler = new Sampler(job.Sampling, model.Config.VocabSize, _constraint);
            Prompt = [.. job.Prompt];
            _sampler.Observe(Prompt);
            Cache = model.CreateCache(Prompt.Length + _budget);
        }

        public int[] Prompt { get; }
        public KvCache Cache { get; }

        /// <summary>Samples the next token from the logits of the last position.</summary>
        public GeneratedToken Next(ReadOnlySpan<float> logits)
        {
            var token = _sampler.Sample(logits);
            _produced++;
            if (_endTokens.Contains(token) || (_constraint is { IsComplete: true } && _endTokens.Count == 0)) return new GeneratedToken(token, FinishReason.Stop);
            return new GeneratedToken(token, _produced == _budget ? FinishReason.Length : null);
        }

        public void Dispose()
        {
            Cache.Dispose();
            _constraint?.Dispose();
        }
    }
}
