using Exo.Inference.Backends;
using Exo.Inference.Model;
using Exo.Inference.Sampling;

namespace Exo.Inference.Verification;

/// <summary>What one reference case measured.</summary>
public sealed record CaseReport(
    int Index,
    int PromptTokens,
    double LogitError,                 // max |Δ| / max |ref| over every position's logits
    IReadOnlyList<double> HiddenErrors, // per layer boundary, the same relative measure
    int GreedyMatches,                 // leading greedy tokens equal to the reference's
    int GreedyTotal,
    double StepwiseError,              // one-token decode steps against the whole-sequence prefill, the same measure; 0 when bit for bit
    bool StepwiseMustBeExact,          // the backend promises bit-for-bit equality (IModelStage.BatchInvariant)
    int ShardSplits,                   // 2- and 3-stage splits tried
    IReadOnlyList<string> ShardMismatches)
{
    public bool StepwiseExact => StepwiseError == 0;

    public bool Passed(double tolerance) =>
        LogitError <= tolerance && GreedyMatches == GreedyTotal && ShardMismatches.Count == 0
        && (StepwiseExact || (!StepwiseMustBeExact && StepwiseError <= tolerance));
}

/// <summary>
/// Runs a model folder's reference cases through the engine: whole, step by step, and split into 2 and 3 pipeline
/// stages at every boundary, comparing against transformers' f64 results and the sharded runs against the whole one.
/// </summary>
/// <param name="modelPath">A model folder, or a GGUF file.</param>
/// <param name="splits">The pipeline splits to compare with the whole model; every 2- and 3-stage split when null.</param>
/// <param name="referenceDirectory">Where reference.json lies: the model folder (or the GGUF file's folder) when null.</param>
/// <param name="describe">Told what the stages run on, once they are loaded.</param>
public sealed class ModelVerifier(string modelPath, BackendOptions backend, IReadOnlyList<LayerRange[]>? splits = null, string? referenceDirectory = null,
    Action<string>? describe = null)
{
    public const double DefaultTolerance = 1e-4;

    public IEnumerable<CaseReport> Run()
    {
        var reference = ReferenceFile.Load(referenceDirectory ?? (Weights.ModelPath.IsGguf(modelPath) ? Path.GetDirectoryName(Path.GetFullPath(modelPath))! : modelPath));
        var config = ModelConfig.LoadAny(modelPath);
        var stageSplits = splits ?? Splits(config.LayerCount);
        using var whole = StageLoader.Load(modelPath, null, backend);
        describe?.Invoke(whole.Backend);

        for (var i = 0; i < reference.Cases.Count; i++)
        {
            var c = reference.Cases[i];
            if (c.Vocab != config.VocabSize)
                throw new ModelFormatException($"reference case {i} has {c.Vocab} logits per position; config.json says vocab_size {config.VocabSize}");
            if (c.HiddenStates.Length != config.LayerCount + 1)
                throw new ModelFormatException($"reference case {i} has {c.HiddenStates.Length} hidden states; expected {config.LayerCount + 1}");

            // Whole model, all positions at once, capturing every layer boundary.
            var hidden = new float[config.LayerCount + 1][];
            var run = Generate([whole], c.InputIds, c.GreedyNewTokens.Length, (b, h) => hidden[b] = h.ToArray());
            var hiddenErrors = hidden.Select((h, b) => RelativeError(h, c.HiddenStates[b])).ToArray();
            var greedyMatches = c.GreedyNewTokens.Zip(run.Tokens).TakeWhile(p => p.First == p.Second).Count();

            var mismatches = new List<string>();
            foreach (var split in stageSplits)
            {
                var stages = split.Select(r => StageLoader.Load(modelPath, r, backend)).ToArray();
                try
                {
                    var sharded = Generate(stages, c.InputIds, c.GreedyNewTokens.Length, null);
                    if (!sharded.Logits.SequenceEqual(run.Logits) || !sharded.Tokens.SequenceEqual(run.Tokens))
                        mismatches.Add(string.Join(" + ", split));
                }
                finally
                {
                    foreach (var stage in stages) stage.Dispose();
                }
            }

            var stepwise = StepwiseError(whole, c.InputIds, run.PromptLogits);
            yield return new CaseReport(i, c.InputIds.Length, RelativeError(run.PromptLogits, c.Logits), hiddenErrors,
                greedyMatches, c.GreedyNewTokens.Length, stepwise, whole.BatchInvariant, stageSplits.Count, mismatches);
        }
    }

    /// <summary>Every way to cut the layers into 2 or 3 non-empty contiguous stages.</summary>
    public static IReadOnlyList<LayerRange[]> Splits(int layers)
    {
        var result = new List<LayerRange[]>();
        for (var a = 1; a < layers; a++)
        {
            result.Add([new(0, a), new(a, layers)]);
        }

        for (var a = 1; a < layers; a++)
        {
            for (var b = a + 1; b < layers; b++) result.Add([new(0, a), new(a, b), new(b, layers)]);
        }

        return result;
    }

    private sealed record Generation(float[] PromptLogits, float[] Logits, int[] Tokens);

    /// <summary>
    /// Prefills the prompt through the pipeline of stages (all logits kept), then decodes greedily, one token per step.
    /// Logits holds the prompt's logits followed by each step's.
    /// </summary>
    private static Generation Generate(IModelStage[] stages, int[] prompt, int newTokens, HiddenStateObserver? observe)
    {
        var config = stages[0].Config;
        var vocab = config.VocabSize;
        var caches = stages.Select(s => s.CreateCache(prompt.Length + newTokens)).ToArray();
        try
        {
            var logits = new List<float>();
            var tokens = new int[newTokens];

            var promptLogits = RunPipeline(stages, caches, prompt, LogitRows.All, observe);
            logits.AddRange(promptLogits);
            var last = promptLogits.AsSpan((prompt.Length - 1) * vocab, vocab);
            for (var t = 0; t < newTokens; t++)
            {
                tokens[t] = Sampler.Argmax(last);
                if (t == newTokens - 1) break;
                var step = RunPipeline(stages, caches, [tokens[t]], LogitRows.LastOfEachSequence, null);
                logits.AddRange(step);
                last = step;
            }

            return new Generation(promptLogits, logits.ToArray(), tokens);
        }
        finally
        {
            foreach (var cache in caches) cache.Dispose();
        }
    }

    private static float[] RunPipeline(IModelStage[] stages, KvCache[] caches, int[] tokens, LogitRows rows, HiddenStateObserver? observe)
    {
        float[] activations = [];
        for (var s = 0; s < stages.Length; s++)
        {
            var stage = stages[s];
            SequenceChunk[] batch = [new(caches[s], tokens.Length)];
            var output = new float[stage.OutputRows(batch, rows) * stage.OutputWidth];
            if (s == 0) stage.ForwardTokens(batch, tokens, output, rows, observe);
            else stage.ForwardHidden(batch, activations, output, rows, observe);
            activations = output;
        }

        return activations;
    }

    /// <summary>
    /// Feeds the prompt one token at a time and compares each step's logits with the prefill's row: the largest
    /// relative difference, 0 when every step is bit for bit the prefill's.
    /// </summary>
    private static double StepwiseError(IModelStage whole, int[] prompt, float[] promptLogits)
    {
        var vocab = whole.Config.VocabSize;
        using var cache = whole.CreateCache(prompt.Length);
        var step = new float[vocab];
        var worst = 0.0;
        for (var t = 0; t < prompt.Length; t++)
        {
            whole.ForwardTokens([new SequenceChunk(cache, 1)], [prompt[t]], step);
            var row = promptLogits.AsSpan(t * vocab, vocab);
            if (!step.AsSpan().SequenceEqual(row)) worst = Math.Max(worst, Math.Max(RelativeError(step, row), double.Epsilon));
        }

        return worst;
    }

    /// <summary>max |a - b| / max |b|.</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        if (actual.Length != expected.Length) return double.PositiveInfinity;
        double worst = 0, scale = 0;
        for (var i = 0; i < actual.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs((double)actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs((double)expected[i]));
        }

        return scale == 0 ? worst : worst / scale;
    }
}
