namespace Exo.Inference.Sampling;

/// <summary>
/// Picks tokens from logits for one sequence. It owns its scratch buffers and random stream, so sampling a token
/// allocates nothing and a seeded sampler is reproducible on every platform.
/// </summary>
public sealed class Sampler
{
    private readonly SamplingParameters _parameters;
    private readonly float[] _logits;   // [vocab] penalised, tempered copy
    private readonly int[] _order;      // [vocab] candidate token ids
    private readonly int[] _counts;     // [vocab] occurrences in the context
    private readonly DescendingProbability _byProbability;
    private Pcg32 _random;

    public Sampler(SamplingParameters parameters, int vocabSize)
    {
        parameters.Validate();
        _parameters = parameters;
        _logits = new float[vocabSize];
        _order = new int[vocabSize];
        _counts = new int[vocabSize];
        _byProbability = new DescendingProbability(_logits);
        _random = new Pcg32(parameters.Seed ?? (ulong)Random.Shared.NextInt64());
    }

    /// <summary>Records tokens of the prompt or of earlier output, which the penalties look at.</summary>
    public void Observe(ReadOnlySpan<int> tokens)
    {
        foreach (var t in tokens)
        {
            if ((uint)t < (uint)_counts.Length) _counts[t]++;
        }
    }

    /// <summary>Chooses the next token from logits [vocab] and records it as seen.</summary>
    public int Sample(ReadOnlySpan<float> logits)
    {
        var p = _parameters;
        if (logits.Length != _logits.Length) throw new ArgumentException($"logits hold {logits.Length} values for a vocabulary of {_logits.Length}");
        var working = _logits.AsSpan();
        logits.CopyTo(working);
        ApplyPenalties(working);

        var token = p.IsGreedy ? Argmax(working) : SampleFiltered(working);
        _counts[token]++;
        return token;
    }

    /// <summary>The index of the largest value; the first one on ties, as torch.argmax.</summary>
    public static int Argmax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best]) best = i;
        }

        return best;
    }

    private void ApplyPenalties(Span<float> logits)
    {
        var p = _parameters;
        if (p.RepetitionPenalty == 1f && p.FrequencyPenalty == 0f && p.PresencePenalty == 0f) return;
        for (var t = 0; t < logits.Length; t++)
        {
            var n = _counts[t];
            if (n == 0) continue;
            var v = logits[t];
            v = v > 0 ? v / p.RepetitionPenalty : v * p.RepetitionPenalty;
            logits[t] = v - n * p.FrequencyPenalty - p.PresencePenalty;
        }
    }

    private int SampleFiltered(Span<float> logits)
    {
        var p = _parameters;
        var max = float.NegativeInfinity;
        foreach (var v in logits) max = Math.Max(max, v);

        // Softmax of the tempered logits, in place.
        var total = 0.0;
        for (var i = 0; i < logits.Length; i++)
        {
            var e = (float)Math.Exp((logits[i] - max) / p.Temperature);
            logits[i] = e;
            total += e;
        }

        for (var i = 0; i < logits.Length; i++) logits[i] = (float)(logits[i] / total);

        // Candidates by descending probability (ties by token id, so the order is deterministic).
        var count = logits.Length;
        var order = _order.AsSpan(0, count);
        for (var i = 0; i < count; i++) order[i] = i;
        order.Sort(_byProbability);

        if (p.TopK > 0) count = Math.Min(count, p.TopK);
        if (p.TopP < 1f)
        {
            var cumulative = 0.0;
            for (var i = 0; i < count; i++)
            {
                cumulative += logits[order[i]];
                if (cumulative >= p.TopP)
                {
                    count = i + 1;
                    break;
                }
            }
        }

        if (p.MinP > 0f)
        {
            var threshold = p.MinP * logits[order[0]];
            var kept = 1;
            while (kept < count && logits[order[kept]] >= threshold) kept++;
            count = kept;
        }

        var mass = 0.0;
        for (var i = 0; i < count; i++) mass += logits[order[i]];
        var target = _random.NextDouble() * mass;
        for (var i = 0; i < count; i++)
        {
            target -= logits[order[i]];
            if (target < 0) return order[i];
        }

        return order[count - 1];
    }

    private sealed class DescendingProbability(float[] probabilities) : IComparer<int>
    {
        public int Compare(int a, int b) =>
            probabilities[b] != probabilities[a] ? probabilities[b].CompareTo(probabilities[a]) : a.CompareTo(b);
    }
}
