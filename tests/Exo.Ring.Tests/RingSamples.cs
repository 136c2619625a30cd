using Exo.Inference.Generation;
using Exo.Inference.Pipeline;
using Exo.Inference.Sampling;

namespace Exo.Ring.Tests;

/// <summary>One message of every kind, with and without its optional parts, for a small model.</summary>
public static class RingSamples
{
    /// <summary>A model of 100 tokens, hidden states 4 wide and 64 positions.</summary>
    public static readonly RingLimits Limits = new(VocabSize: 100, HiddenSize: 4, MaxPositions: 64);

    public const string Traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    public static readonly RingSetup FullSetup = new(
        "exo-tiny",
        new RequestOptions(
            16,
            new SamplingParameters
            {
                Temperature = 0.7f,
                TopK = 40,
                TopP = 0.9f,
                MinP = 0.05f,
                RepetitionPenalty = 1.1f,
                FrequencyPenalty = 0.5f,
                PresencePenalty = -0.25f,
                Seed = 1234567890123,
            },
            8,
            new HashSet<int> { 0, 2 },
            [5, 9, 2],
            3),
        Traceparent);

    /// <summary>Greedy, no seed, no end tokens, no logprobs, no trace.</summary>
    public static readonly RingSetup PlainSetup = new("exo-tiny", new RequestOptions(4, SamplingParameters.Greedy, 1, new HashSet<int>(), [7, 7, 7], null), null);

    /// <summary>A request resumed on a new ring: its output so far (the prompt's last 2 tokens) held to a schema, some tokens biased.</summary>
    public static readonly RingSetup ConstrainedSetup = new(
        "exo-tiny",
        new RequestOptions(16, new SamplingParameters { LogitBias = new Dictionary<int, float> { [3] = -100f, [42] = 2.5f } }, 6,
            new HashSet<int> { 2 }, [5, 9, 11, 12], null, new OutputConstraint("<tool_call>\n", """{"type": "object"}""", "\n</tool_call>"), 2),
        null);

    public static readonly Dictionary<string, RingMessage> Messages = new()
    {
        ["a resumed prompt with an output constraint and a logit bias"] = new("r4", 3, 0, new RingTokens([5, 9, 11, 12]), ConstrainedSetup),
        ["a prompt with every option"] = new("r1", 7, 0, new RingTokens([5, 9, 2]), FullSetup),
        ["a plain prompt"] = new("r2", 1, 0, new RingTokens([7, 7, 7]), PlainSetup),
        ["a prompt asking for the sampled token's logprob only"] =
            new("r3", 1, 0, new RingTokens([5, 9, 2]), FullSetup with { Options = FullSetup.Options with { TopLogprobs = 0 } }),
        ["a prefill's hidden states with the setup"] = new("r1", 7, 0, new RingHiddenStates([1.5f, -2f, 0f, 3.25e-3f, -0f, 1e30f, -1e-30f, 1e-45f], 2, 4), FullSetup),
        ["a decode step's hidden states"] = new("r1", 7, 5, new RingHiddenStates([0.1f, 0.2f, 0.3f, 0.4f], 1, 4)),
        ["a sampled token"] = new("r1", 7, 3, new RingSampledToken(42, 0, null, null)),
        ["the last token, stopped, with logprobs"] =
            new("r1", 7, 9, new RingSampledToken(99, 6, FinishReason.Stop, new TokenLogprobs(-0.25f, [new(99, -0.25f), new(3, -1.5f), new(0, float.NegativeInfinity)]))),
        ["the last token, at the length limit, with its own logprob only"] =
            new("r3", 1, 10, new RingSampledToken(0, 7, FinishReason.Length, new TokenLogprobs(-3f, []))),
        ["a capacity error"] = RingMessage.Failure("r1", RingErrorCode.Capacity, "no KV cache memory left"),
        ["a stale placement error"] = RingMessage.Failure("r1", RingErrorCode.StalePlacement, "re-planned"),
        ["a not-ready error"] = RingMessage.Failure("r1", RingErrorCode.NotReady, "loading"),
        ["a failure"] = RingMessage.Failure("r1", RingErrorCode.Failed, ""),
    };
}
