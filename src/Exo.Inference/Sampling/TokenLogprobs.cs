namespace Exo.Inference.Sampling;

/// <summary>A candidate token and its log-probability under the model's distribution.</summary>
public readonly record struct TokenLogprob(int Token, float Logprob);

/// <summary>The chosen token's log-probability and the most likely alternatives at that step.</summary>
public sealed record TokenLogprobs(float Logprob, TokenLogprob[] Top)
{
    public const int MaxTop = 20;

    /// <summary>
    /// Log-softmax of the raw logits (before penalties and temperature, as OpenAI reports them) for
    /// <paramref name="token"/> and the <paramref name="top"/> most likely tokens, most likely first. Tokens masked out
    /// (negative infinity: an output grammar refuses them) are never among the top.
    /// </summary>
    public static TokenLogprobs Compute(ReadOnlySpan<float> logits, int token, int top)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(top);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(top, MaxTop);
        var max = float.NegativeInfinity;
        foreach (var v in logits) max = Math.Max(max, v);
        var sum = 0.0;
        foreach (var v in logits) sum += Math.Exp(v - max);
        var logNormaliser = max + Math.Log(sum);

        // A small insertion-sorted list: top is at most 20, the vocabulary is scanned once.
        var best = new TokenLogprob[Math.Min(top, logits.Length)];
        var count = 0;
        for (var i = 0; i < logits.Length; i++)
        {
            if (float.IsNegativeInfinity(logits[i])) continue;
            if (count == best.Length && (best.Length == 0 || logits[i] <= best[^1].Logprob)) continue;
            var at = Math.Min(count, best.Length - 1);
            while (at > 0 && best[at - 1].Logprob < logits[i])
            {
                if (at < best.Length) best[at] = best[at - 1];
                at--;
            }

            best[at] = new TokenLogprob(i, logits[i]);
            if (count < best.Length) count++;
        }

        if (count < best.Length) best = best[..count];
        for (var i = 0; i < best.Length; i++) best[i] = best[i] with { Logprob = (float)(best[i].Logprob - logNormaliser) };
        return new TokenLogprobs((float)(logits[token] - logNormaliser), best);
    }
}
