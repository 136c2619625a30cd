using System.Text.Json;
using Exo.Inference.Sampling;
using Exo.Text.Constraints;

namespace Exo.Inference.Tests.Engine;

/// <summary>
/// Sampling under an output grammar and logit_bias. The vocabulary: token 0 ends, token 1 + b writes byte b; the grammar
/// is an integer, so the first token must be '-' or a digit.
/// </summary>
public sealed class ConstrainedSamplerTests
{
    private const int Vocab = 257;
    private static readonly TokenVocabulary Bytes = TokenVocabulary.FromTokenBytes([null, .. Enumerable.Range(0, 256).Select(b => new[] { (byte)b })]);
    private static readonly OutputGrammar Integer = OutputGrammar.Json(JsonDocument.Parse("""{"type": "integer"}""").RootElement.Clone());
    private static readonly int[] Allowed = [1 + '-', .. Enumerable.Range(1 + '0', 10)];

    /// <summary>Logits that favour refused tokens: 'x' most, then the digits in falling order.</summary>
    private static float[] Logits()
    {
        var logits = new float[Vocab];
        Array.Fill(logits, -5f);
        logits[1 + 'x'] = 10f;
        for (var d = 0; d < 10; d++) logits[1 + '0' + d] = 2f - 0.3f * d;
        return logits;
    }

    private static Sampler Constrained(SamplingParameters p) => new(p, Vocab, Integer.Start(Bytes, new HashSet<int> { 0 }, 32));

    [Fact]
    public void GreedyTakesTheBestAllowedToken()
    {
        Assert.Equal(1 + 'x', new Sampler(SamplingParameters.Greedy, Vocab).Sample(Logits()));
        Assert.Equal(1 + '0', Constrained(SamplingParameters.Greedy).Sample(Logits()));
    }

    [Fact]
    public void TemperatureSamplingFollowsTheMaskedDistribution()
    {
        var logits = Logits();
        var weights = Allowed.Select(t => Math.Exp(logits[t])).ToArray();
        var expected = weights.Select(w => w / weights.Sum()).ToArray();
        var counts = new int[Vocab];
        const int draws = 20000;
        for (var seed = 0; seed < draws; seed++) counts[Constrained(new SamplingParameters { Temperature = 1f, Seed = (ulong)seed }).Sample(logits)]++;
        Assert.Equal(draws, Allowed.Sum(t => counts[t]));
        for (var i = 0; i < Allowed.Length; i++) Assert.InRange(counts[Allowed[i]] / (double)draws, expected[i] - 0.015, expected[i] + 0.015);
    }

    [Fact]
    public void FiltersCutTheMaskedDistribution()
    {
        // Top-k of the full distribution would be 'x' and '0'; of the masked one, '0' and '1'.
        for (var seed = 0; seed < 200; seed++)
            Assert.InRange(Constrained(new SamplingParameters { Temperature = 1f, TopK = 2, Seed = (ulong)seed }).Sample(Logits()), 1 + '0', 1 + '1');
        for (var seed = 0; seed < 200; seed++)
            Assert.Contains(Constrained(new SamplingParameters { Temperature = 1.5f, TopP = 0.9f, MinP = 0.01f, Seed = (ulong)seed }).Sample(Logits()), Allowed);
    }

    [Fact]
    public void LogprobsAreOverTheMaskedDistribution()
    {
        var sampler = Constrained(SamplingParameters.Greedy);
        var token = sampler.Sample(Logits(), 20, out var logprobs);
        Assert.NotNull(logprobs);
        Assert.Equal(Allowed.Length, logprobs.Top.Length);
        Assert.All(logprobs.Top, c => Assert.Contains(c.Token, Allowed));
        Assert.Equal(1.0, logprobs.Top.Sum(c => Math.Exp(c.Logprob)), 4);
        Assert.Equal(logprobs.Top[0].Logprob, logprobs.Logprob);
        Assert.Equal(1 + '0', token);
    }

    [Fact]
    public void TheSamplerAdvancesTheConstraint()
    {
        var constraint = Integer.Start(Bytes, new HashSet<int> { 0 }, 32);
        var sampler = new Sampler(SamplingParameters.Greedy, Vocab, constraint);
        var logits = Logits();
        logits[1 + '-'] = 9f;
        Assert.Equal(1 + '-', sampler.Sample(logits));
        Assert.Equal(1 + '0', sampler.Sample(logits));
        Assert.True(constraint.IsComplete);   // nothing follows "-0"
        Assert.Equal(0, sampler.Sample(logits));
        Assert.Equal(3, constraint.Accepted);
    }

    [Fact]
    public void BiasMinus100BansAndPlus100Forces()
    {
        var logits = Logits();
        var banned = new SamplingParameters { LogitBias = new Dictionary<int, float> { [1 + 'x'] = -100f } };
        Assert.Equal(1 + '0', new Sampler(banned, Vocab).Sample(logits));
        var forced = new SamplingParameters { LogitBias = new Dictionary<int, float> { [1 + 'q'] = 100f } };
        Assert.Equal(1 + 'q', new Sampler(forced, Vocab).Sample(logits));
        // Bias acts before the grammar: it re-ranks allowed tokens, and a ban of every allowed token yields to the grammar.
        var toNine = new SamplingParameters { LogitBias = new Dictionary<int, float> { [1 + '9'] = 50f } };
        Assert.Equal(1 + '9', Constrained(toNine).Sample(logits));
        var banAll = new SamplingParameters { LogitBias = Allowed.ToDictionary(t => t, _ => -100f) };
        Assert.Equal(1 + '0', Constrained(banAll).Sample(logits));
    }

    [Theory]
    [InlineData(0f, 0)]
    [InlineData(1f, 0)]
    [InlineData(1f, 20)]
    public void SamplingUnderAConstraintAllocatesNothingOnceWarm(float temperature, int topK)
    {
        var integers = OutputGrammar.Json(JsonDocument.Parse("""{"type": "array", "items": {"type": "integer"}}""").RootElement.Clone());
        var sampler = new Sampler(new SamplingParameters { Temperature = temperature, TopK = topK, Seed = 5, LogitBias = new Dictionary<int, float> { [1 + '9'] = 1f, [1 + ']'] = -100f } },   // the array never closes
            Vocab, integers.Start(Bytes, new HashSet<int> { 0 }, 1_000_000));
        var random = new Random(3);
        var pool = Enumerable.Range(0, 64).Select(_ => Enumerable.Range(0, Vocab).Select(_ => (float)random.NextDouble() * 4).ToArray()).ToArray();
        // Warm up: the automaton's states and masks, and the JIT's tiers (whose promotions allocate on this thread).
        for (var i = 0; i < 20_000; i++) sampler.Sample(pool[i % pool.Length]);
        Thread.Sleep(500);
        for (var i = 0; i < 20_000; i++) sampler.Sample(pool[i % pool.Length]);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 2_000; i++) sampler.Sample(pool[i % pool.Length]);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Theory]
    [InlineData(-100.5f)]
    [InlineData(101f)]
    [InlineData(float.NaN)]
    public void BiasOutsideItsRangeIsRefused(float bias) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new SamplingParameters { LogitBias = new Dictionary<int, float> { [3] = bias } }.Validate());

    [Fact]
    public void BiasOnATokenOutsideTheVocabularyIsRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(new SamplingParameters { LogitBias = new Dictionary<int, float> { [Vocab] = 1f } }, Vocab));
}
