namespace Exo.Inference.Sampling;

/// <summary>
/// How the last stage picks the next token. Temperature 0 is greedy. Filters apply in the order transformers and
/// llama.cpp use: penalties, temperature, then top-k, top-p and min-p on the tempered distribution.
/// </summary>
public sealed record SamplingParameters
{
    public static readonly SamplingParameters Greedy = new();

    public float Temperature { get; init; }
    /// <summary>Keep only the k most likely tokens; 0 keeps all.</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of tokens whose probability reaches p; 1 keeps all.</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>Drop tokens less likely than min-p times the most likely one; 0 keeps all.</summary>
    public float MinP { get; init; }
    /// <summary>Divides positive (multiplies negative) logits of tokens already seen; 1 is off.</summary>
    public float RepetitionPenalty { get; init; } = 1f;
    /// <summary>OpenAI's: subtracted once per earlier occurrence of a token.</summary>
    public float FrequencyPenalty { get; init; }
    /// <summary>OpenAI's: subtracted once from every token that occurred.</summary>
    public float PresencePenalty { get; init; }
    /// <summary>
    /// OpenAI's logit_bias: added to a token's logit before the penalties, each in [-100, 100]; -100 bans the token
    /// outright (its logit becomes negative infinity), unless an output grammar leaves nothing else.
    /// </summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }
    /// <summary>Seed of the sampler's random stream; the same seed gives the same tokens.</summary>
    public ulong? Seed { get; init; }

    /// <summary>The lowest logit bias, which bans a token.</summary>
    public const float MinLogitBias = -100f;

    /// <summary>The most tokens one logit_bias may name.</summary>
    public const int MostBiasedTokens = 1024;

    public bool IsGreedy => Temperature <= 0f;

    /// <summary>Only temperature shapes the distribution: no top-k, top-p or min-p filter cuts it.</summary>
    public bool IsUnfiltered => TopK == 0 && TopP >= 1f && MinP == 0f;

    /// <summary>Throws a clear error for values outside their meaningful range.</summary>
    public void Validate()
    {
        if (!float.IsFinite(Temperature) || Temperature < 0 || Temperature > 100) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "temperature must be in [0, 100]");
        if (TopK < 0) throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "top_k must be 0 (off) or positive");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "top_p must be in (0, 1]");
        if (!(MinP >= 0 && MinP <= 1)) throw new ArgumentOutOfRangeException(nameof(MinP), MinP, "min_p must be in [0, 1]");
        if (!(RepetitionPenalty > 0) || !float.IsFinite(RepetitionPenalty)) throw new ArgumentOutOfRangeException(nameof(RepetitionPenalty), RepetitionPenalty, "repetition_penalty must be positive");
        if (!(FrequencyPenalty >= -2 && FrequencyPenalty <= 2)) throw new ArgumentOutOfRangeException(nameof(FrequencyPenalty), FrequencyPenalty, "frequency_penalty must be in [-2, 2]");
        if (!(PresencePenalty >= -2 && PresencePenalty <= 2)) throw new ArgumentOutOfRangeException(nameof(PresencePenalty), PresencePenalty, "presence_penalty must be in [-2, 2]");
        if (LogitBias?.Count > MostBiasedTokens) throw new ArgumentOutOfRangeException(nameof(LogitBias), LogitBias.Count, $"logit_bias may name at most {MostBiasedTokens} tokens");
        foreach (var (token, bias) in LogitBias ?? new Dictionary<int, float>())
        {
            if (token < 0) throw new ArgumentOutOfRangeException(nameof(LogitBias), token, "logit_bias token ids must not be negative");
            if (!(bias >= MinLogitBias && bias <= -MinLogitBias)) throw new ArgumentOutOfRangeException(nameof(LogitBias), bias, $"logit_bias of token {token} must be in [-100, 100]");
        }
    }
}
