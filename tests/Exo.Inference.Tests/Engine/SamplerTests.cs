using Exo.Inference.Sampling;

namespace Exo.Inference.Tests.Engine;

public sealed class SamplerTests
{
    private static readonly float[] Logits = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.15f), MathF.Log(0.05f)];

    private static int[] Draw(SamplingParameters p, int n, float[]? logits = null)
    {
        var sampler = new Sampler(p, 4);
        return Enumerable.Range(0, n).Select(_ => sampler.Sample(logits ?? Logits)).ToArray();
    }

    private static double Share(int[] draws, int token) => draws.Count(t => t == token) / (double)draws.Length;

    [Fact]
    public void GreedyTakesTheFirstLargest()
    {
        Assert.Equal(1, Sampler.Argmax([0f, 3f, 3f, -1f]));
        Assert.All(Draw(SamplingParameters.Greedy, 5), t => Assert.Equal(0, t));
    }

    [Fact]
    public void SameSeedSameTokensOtherSeedOtherTokens()
    {
        var p = new SamplingParameters { Temperature = 1f, Seed = 42 };
        Assert.Equal(Draw(p, 200), Draw(p, 200));
        Assert.NotEqual(Draw(p, 200), Draw(p with { Seed = 43 }, 200));
    }

    [Fact]
    public void TemperatureOneFollowsTheDistribution()
    {
        var draws = Draw(new SamplingParameters { Temperature = 1f, Seed = 1 }, 20000);
        Assert.InRange(Share(draws, 0), 0.48, 0.52);
        Assert.InRange(Share(draws, 3), 0.04, 0.06);
    }

    [Fact]
    public void LowTemperatureSharpens()
    {
        var draws = Draw(new SamplingParameters { Temperature = 0.1f, Seed = 1 }, 2000);
        Assert.True(Share(draws, 0) > 0.98);
    }

    [Fact]
    public void TopKKeepsTheKMostLikely()
    {
        var draws = Draw(new SamplingParameters { Temperature = 1f, TopK = 2, Seed = 3 }, 5000);
        Assert.All(draws, t => Assert.InRange(t, 0, 1));
        Assert.InRange(Share(draws, 0), 0.5 / 0.8 - 0.03, 0.5 / 0.8 + 0.03);
    }

    [Fact]
    public void TopPKeepsTheSmallestNucleus()
    {
        // 0.5 + 0.3 reaches 0.7: tokens 2 and 3 are never drawn.
        var draws = Draw(new SamplingParameters { Temperature = 1f, TopP = 0.7f, Seed = 4 }, 5000);
        Assert.All(draws, t => Assert.InRange(t, 0, 1));
        Assert.Contains(1, draws);
    }

    [Fact]
    public void MinPDropsUnlikelyTokens()
    {
        // Threshold 0.4 * 0.5 = 0.2 keeps tokens 0 and 1 only.
        var draws = Draw(new SamplingParameters { Temperature = 1f, MinP = 0.4f, Seed = 5 }, 5000);
        Assert.All(draws, t => Assert.InRange(t, 0, 1));
        Assert.Contains(1, draws);
    }

    [Fact]
    public void RepetitionPenaltyPushesSeenTokensDown()
    {
        float[] logits = [2.0f, 1.5f, -1f, -2f];
        var sampler = new Sampler(new SamplingParameters { RepetitionPenalty = 2f }, 4);
        sampler.Observe([0]);
        Assert.Equal(1, sampler.Sample(logits)); // 2.0 / 2 = 1.0 < 1.5
        Assert.Equal(0, sampler.Sample(logits)); // token 1 now seen too: 0.75 < 1.0
    }

    [Fact]
    public void FrequencyAndPresencePenaltiesSubtract()
    {
        float[] logits = [2.0f, 1.5f, 0f, 0f];
        var frequency = new Sampler(new SamplingParameters { FrequencyPenalty = 0.3f }, 4);
        frequency.Observe([0]);
        Assert.Equal(0, frequency.Sample(logits)); // 2.0 - 0.3 > 1.5
        Assert.Equal(1, frequency.Sample(logits)); // token 0 seen twice: 2.0 - 0.6 < 1.5

        var presence = new Sampler(new SamplingParameters { PresencePenalty = 0.6f }, 4);
        presence.Observe([0, 0, 0]);
        Assert.Equal(1, presence.Sample(logits)); // 2.0 - 0.6 < 1.5, once however often seen
    }

    [Theory]
    [InlineData(-1f, 0, 1f, 0f)]
    [InlineData(1f, -1, 1f, 0f)]
    [InlineData(1f, 0, 0f, 0f)]
    [InlineData(1f, 0, 1.5f, 0f)]
    [InlineData(1f, 0, 1f, 2f)]
    [InlineData(float.NaN, 0, 1f, 0f)]
    public void OutOfRangeParametersAreRefused(float temperature, int topK, float topP, float minP) =>
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            new Sampler(new SamplingParameters { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP }, 4));

    [Fact]
    public void WrongLogitCountIsRefused() =>
        Assert.Throws<ArgumentException>(() => new Sampler(SamplingParameters.Greedy, 4).Sample([1f, 2f]));
}

public sealed class TokenLogprobsTests
{
    [Fact]
    public void LogSoftmaxOfTheChosenAndTopTokens()
    {
        float[] logits = [1f, 3f, 2f, 3f, -1f];
        var result = TokenLogprobs.Compute(logits, 2, 3);
        var normaliser = Math.Log(logits.Sum(v => Math.Exp(v)));
        Assert.Equal(2 - normaliser, result.Logprob, 5);
        Assert.Equal([1, 3, 2], result.Top.Select(t => t.Token)); // ties keep the lower id first
        Assert.Equal(3 - normaliser, result.Top[0].Logprob, 5);
        Assert.Empty(TokenLogprobs.Compute(logits, 0, 0).Top);
        Assert.Equal(5, TokenLogprobs.Compute(logits, 0, 20).Top.Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => TokenLogprobs.Compute(logits, 0, 21));
    }
}
