namespace Exo.Ring.Tests;

/// <summary>
/// Equality of decoded messages field by field: the records hold arrays, sets and lists, which records compare by
/// reference.
/// </summary>
public static class RingAssert
{
    public static void Same(RingMessage expected, RingMessage actual)
    {
        Assert.Equal((expected.RequestId, expected.PlacementVersion, expected.Position), (actual.RequestId, actual.PlacementVersion, actual.Position));
        Same(expected.Setup, actual.Setup);
        switch (expected.Payload)
        {
            case RingTokens tokens:
                Assert.Equal(tokens.Ids, Assert.IsType<RingTokens>(actual.Payload).Ids);
                break;
            case RingHiddenStates hidden:
                var actualHidden = Assert.IsType<RingHiddenStates>(actual.Payload);
                Assert.Equal((hidden.Rows, hidden.Width), (actualHidden.Rows, actualHidden.Width));
                Assert.Equal(hidden.Values.Select(BitConverter.SingleToInt32Bits), actualHidden.Values.Select(BitConverter.SingleToInt32Bits));
                break;
            case RingSampledToken sampled:
                var actualSampled = Assert.IsType<RingSampledToken>(actual.Payload);
                Assert.Equal((sampled.Token, sampled.Index, sampled.Finish), (actualSampled.Token, actualSampled.Index, actualSampled.Finish));
                Assert.Equal(sampled.Logprobs?.Logprob, actualSampled.Logprobs?.Logprob);
                Assert.Equal(sampled.Logprobs?.Top, actualSampled.Logprobs?.Top);
                break;
            default:
                Assert.Equal(expected.Payload, actual.Payload);
                break;
        }
    }

    private static void Same(RingSetup? expected, RingSetup? actual)
    {
        if (expected is null)
        {
            Assert.Null(actual);
            return;
        }

        Assert.NotNull(actual);
        Assert.Equal((expected.ModelId, expected.Traceparent), (actual.ModelId, actual.Traceparent));
        var (want, got) = (expected.Options, actual.Options);
        // The logit bias is a dictionary, compared by its entries; the rest of the sampling parameters by value.
        Assert.Equal((want.ContextTokens, want.Sampling with { LogitBias = null }, want.MaxNewTokens, want.TopLogprobs),
            (got.ContextTokens, got.Sampling with { LogitBias = null }, got.MaxNewTokens, got.TopLogprobs));
        Assert.Equal(want.Sampling.LogitBias?.OrderBy(b => b.Key), got.Sampling.LogitBias?.OrderBy(b => b.Key));
        Assert.Equal((want.Output, want.Generated), (got.Output, got.Generated));
        Assert.Equal(want.Prompt, got.Prompt);
        Assert.Equal(want.EndTokens.Order(), got.EndTokens.Order());
    }
}
