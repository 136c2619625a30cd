using Exo.Text.Constraints;

namespace Exo.Inference.Sampling;

/// <summary>
/// Picks tokens from logits for one sequence. It owns its scratch buffers and random stream, so sampling a token
/// allocates nothing and a seeded sampler is reproducible on every platform. With a <see cref="TokenConstraint"/> it
/// samples from the distribution restricted to the tokens the constraint allows, exactly, and advances the constraint.
/// </summary>
public sealed class Sampler
{
    private readonly SamplingParameters _parameters;
    private readonly TokenConstraint? _constraint;
    private readonly float[] _logits;   // [vocab] biased, penalised, tempered copy
    private readonly float[]? _masked;  // [vocab] raw logits masked by the constraint, for logprobs
    /// <summary>Candidates sorted before the draw looks at them; the rest are sorted only when reached.</summary>
    private const int SortedHead = 256;

    private readonly ulong[] _keys;     // [vocab] candidates' sort keys: probability descending, then token id
    private readonly int[] _counts;     // [vocab] occurrences in the context
    private readonly int[] _biasTokens;
    private readonly float[] _biasValues;
    private Pcg32 _random;

    public Sampler(SamplingParameters parameters, int vocabSize, TokenConstraint? constraint = null)
    {
        parameters.Validate();
        _parameters = parameters;
        _constraint = constraint;
        _logits = new float[vocabSize];
        _masked = constraint is null ? null : new float[vocabSize];
        _keys = new ulong[vocabSize];
        _counts = new int[vocabSize];
        var bias = parameters.LogitBias ?? new Dictionary<int, float>();
        _biasTokens = [.. bias.Keys];
        _biasValues = [.. bias.Values];
        foreach (var token in _biasTokens)
        {
            if (token >= vocabSize) throw new ArgumentOutOfRangeException(nameof(parameters), token, $"logit_bias names token {token}; the vocabulary has {vocabSize}");
        }
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
    public int Sample(ReadOnlySpan<float> logits) => Sample(logits, null, out _);

    /// <summary>
    /// Chooses the next token from logits [vocab], records it as seen (and accepts it into the constraint), and with
    /// <paramref name="topLogprobs"/> reports its logprobs: over the raw logits, masked by the constraint if any.
    /// </summary>
    public int Sample(ReadOnlySpan<float> logits, int? topLogprobs, out TokenLogprobs? logprobs)
    {
        var p = _parameters;
        if (logits.Length != _logits.Length) throw new ArgumentException($"logits hold {logits.Length} values for a vocabulary of {_logits.Length}");
        var working = Prepare(logits);
        int token;
        if (_constraint is null)
        {
            token = p.IsGreedy ? Argmax(working) : SampleFiltered(working);
        }
        else if (p.IsGreedy)
        {
            // The best token overall, when allowed, is the best allowed one (first on ties either way).
            token = Argmax(working);
            if (!_constraint.Allows(token)) token = Argmax(Masked(logits));
        }
        else if (p.IsUnfiltered)
        {
            // Rejection sampling: a draw that is allowed has the masked distribution; after a refusal, draw from it.
            token = SampleFiltered(working);
            if (!_constraint.Allows(token)) token = SampleFiltered(Masked(logits));
        }
        else
        {
            // Top-k, top-p and min-p must cut the masked distribution, not the full one.
            token = SampleFiltered(Masked(logits));
        }

        logprobs = topLogprobs is { } top ? Logprobs(logits, token, top) : null;
        _constraint?.Accept(token);
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

    /// <summary>The working copy of the logits: biased, then penalised.</summary>
    private Span<float> Prepare(ReadOnlySpan<float> logits)
    {
        var working = _logits.AsSpan();
        logits.CopyTo(working);
        for (var i = 0; i < _biasTokens.Length; i++)
        {
            var bias = _biasValues[i];
            working[_biasTokens[i]] = bias <= SamplingParameters.MinLogitBias ? float.NegativeInfinity : working[_biasTokens[i]] + bias;
        }
        ApplyPenalties(working);
        return working;
    }

    /// <summary>The working copy with the tokens the constraint refuses masked; where bans leave nothing, the grammar wins.</summary>
    private Span<float> Masked(ReadOnlySpan<float> logits)
    {
        var working = Prepare(logits);
        _constraint!.Mask(working);
        if (working.IndexOfAnyExcept(float.NegativeInfinity) >= 0) return working;
        logits.CopyTo(working);
        _constraint.Mask(working);
        return working;
    }

    private TokenLogprobs Logprobs(ReadOnlySpan<float> logits, int token, int top)
    {
        if (_masked is null) return TokenLogprobs.Compute(logits, token, top);
        logits.CopyTo(_masked);
        _constraint!.Mask(_masked);
        return TokenLogprobs.Compute(_masked, token, top);
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

        // Softmax of the tempered logits, in place; masked tokens (most of them, in much of a grammar) need no exp.
        var total = 0.0;
        for (var i = 0; i < logits.Length; i++)
        {
            var e = float.IsNegativeInfinity(logits[i]) ? 0f : (float)Math.Exp((logits[i] - max) / p.Temperature);
            logits[i] = e;
            total += e;
        }

        for (var i = 0; i < logits.Length; i++) logits[i] = (float)(logits[i] / total);

        // Candidates by descending probability, ties by token id (so the order is deterministic), as packed keys
        // (far faster than a comparer). A token of probability 0 (masked, or underflowed) is never drawn: left out.
        // Only the most likely few are sorted at first; the rest only if a filter or the draw reaches them.
        var keys = _keys.AsSpan();
        var candidates = 0;
        for (var i = 0; i < logits.Length; i++)
        {
            if (logits[i] > 0f) keys[candidates++] = ((ulong)~BitConverter.SingleToUInt32Bits(logits[i]) << 32) | (uint)i;
        }
        keys = keys[..candidates];
        var sorted = Math.Min(candidates, SortedHead);
        SelectSmallest(keys, sorted);
        keys[..sorted].Sort();

        var count = candidates;
        if (p.TopK > 0) count = Math.Min(count, p.TopK);
        if (p.TopP < 1f)
        {
            var cumulative = 0.0;
            for (var i = 0; i < count; i++)
            {
                sorted = SortedUpTo(keys, sorted, i);
                cumulative += logits[Token(keys[i])];
                if (cumulative >= p.TopP)
                {
                    count = i + 1;
                    break;
                }
            }
        }

        if (p.MinP > 0f)
        {
            var threshold = p.MinP * logits[Token(keys[0])];
            var kept = 1;
            for (; kept < count; kept++)
            {
                sorted = SortedUpTo(keys, sorted, kept);
                if (logits[Token(keys[kept])] < threshold) break;
            }
            count = kept;
        }

        var mass = 0.0;
        foreach (var key in keys[..count]) mass += logits[Token(key)];
        var target = _random.NextDouble() * mass;
        for (var i = 0; i < count; i++)
        {
            sorted = SortedUpTo(keys, sorted, i);
            target -= logits[Token(keys[i])];
            if (target < 0) return Token(keys[i]);
        }

        SortedUpTo(keys, sorted, count - 1);
        return Token(keys[count - 1]);
    }

    private static int Token(ulong key) => (int)(uint)key;

    /// <summary>Sorts the rest of the keys once position <paramref name="index"/> is past the sorted head; returns how many are sorted.</summary>
    private static int SortedUpTo(Span<ulong> keys, int sorted, int index)
    {
        if (index < sorted) return sorted;
        keys[sorted..].Sort();
        return keys.Length;
    }

    /// <summary>Moves the <paramref name="k"/> smallest keys, in some order, to the front (quickselect; keys are distinct).</summary>
    private static void SelectSmallest(Span<ulong> keys, int k)
    {
        var low = 0;
        var high = keys.Length - 1;
        while (low < high && k > low && k <= high)
        {
            var pivot = MedianOfThree(keys[low], keys[(low + high) >>> 1], keys[high]);
            var i = low;
            var j = high;
            while (i <= j)
            {
                while (keys[i] < pivot) i++;
                while (keys[j] > pivot) j--;
                if (i > j) break;
                (keys[i], keys[j]) = (keys[j], keys[i]);
                i++;
                j--;
            }
            // [low, j] <= pivot <= [i, high]
            if (k <= j) high = j;
            else if (k >= i) low = i;
            else return;
        }
    }

    private static ulong MedianOfThree(ulong a, ulong b, ulong c) => Math.Max(Math.Min(a, b), Math.Min(Math.Max(a, b), c));
}
