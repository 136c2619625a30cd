using Exo.Contracts.V1;
using Google.Protobuf;

namespace Exo.Ring.Tests;

/// <summary>
/// Every kind of ring message, encoded, sent as bytes and decoded, comes back as it was: for a stage, which knows the
/// model, and for a gateway, which does not. The layout on the wire stays the one that workers already read.
/// </summary>
public sealed class RingCodecRoundTripTests
{
    public static TheoryData<string> Kinds => new(RingSamples.Messages.Keys);

    [Theory]
    [MemberData(nameof(Kinds))]
    public void EveryKindOfMessageDecodesToWhatWasEncoded(string kind)
    {
        var message = RingSamples.Messages[kind];
        var bytes = RingCodec.Encode(message).ToByteArray();

        RingAssert.Same(message, RingCodec.Decode(ForwardMessage.Parser.ParseFrom(bytes), RingSamples.Limits));
        RingAssert.Same(message, RingCodec.Decode(ForwardMessage.Parser.ParseFrom(bytes), RingLimits.Unknown));
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void TheHeaderNamesTheRequestTheKindAndTheSetupsModel(string kind)
    {
        var message = RingSamples.Messages[kind];
        var header = RingCodec.ReadHeader(RingCodec.Encode(message));

        var expectedKind = message.Payload switch
        {
            RingTokens => RingPayloadKind.Tokens,
            RingHiddenStates => RingPayloadKind.HiddenStates,
            RingSampledToken => RingPayloadKind.Sampled,
            _ => RingPayloadKind.Error,
        };
        Assert.Equal(new RingHeader(message.RequestId, message.PlacementVersion, expectedKind, message.Setup?.ModelId), header);
    }

    [Fact]
    public void APromptKeepsTheWireLayoutThatWorkersRead()
    {
        var expected = new ForwardMessage
        {
            RequestId = "r1",
            PlacementVersion = 7,
            Position = 0,
            Tokens = new TokenIds { Ids = { 5, 9, 2 } },
            Setup = new RequestSetup
            {
                ModelId = "exo-tiny",
                Sampling = new SamplingParams
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
                ContextTokens = 16,
                MaxTokens = 8,
                EndTokenIds = { 0, 2 },
                Prompt = { 5, 9, 2 },
                TopLogprobs = 3,
                Traceparent = RingSamples.Traceparent,
            },
        };

        Assert.Equal(expected, RingCodec.Encode(RingSamples.Messages["a prompt with every option"]));
    }

    [Fact]
    public void ASampledTokenKeepsTheWireLayoutThatGatewaysRead()
    {
        var expected = new SampledToken
        {
            TokenId = 99,
            Index = 6,
            Finish = FinishReason.Stop,
            Logprob = -0.25f,
            TopLogprobs =
            {
                new TopLogprob { TokenId = 99, Logprob = -0.25f },
                new TopLogprob { TokenId = 3, Logprob = -1.5f },
                new TopLogprob { TokenId = 0, Logprob = float.NegativeInfinity },
            },
        };

        Assert.Equal(expected, RingCodec.Encode(RingSamples.Messages["the last token, stopped, with logprobs"]).Sampled);
        Assert.False(RingCodec.Encode(RingSamples.Messages["a sampled token"]).Sampled.HasLogprob);
    }

    [Fact]
    public void HiddenStatesTravelAsLittleEndianF32RowMajor()
    {
        var wire = RingCodec.Encode(new RingMessage("r1", 7, 5, new RingHiddenStates([1.5f, -2f], 1, 2))).HiddenStates;

        Assert.Equal(DType.F32, wire.Dtype);
        Assert.Equal([1u, 2u], wire.Shape);
        Assert.Equal([0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0], wire.Data.ToByteArray());
    }

    [Fact]
    public void HiddenStatesSentAsF16OrBf16AreWidenedToF32()
    {
        float[] values = [1.5f, -2f, 0.25f, 1024f];
        var halves = values.SelectMany(v => BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)v))).ToArray();
        var brains = values.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(v) >> 16))).ToArray();

        foreach (var (dtype, data) in new[] { (DType.F16, halves), (DType.Bf16, brains) })
        {
            var wire = new ForwardMessage
            {
                RequestId = "r1",
                PlacementVersion = 7,
                Position = 5,
                HiddenStates = new Tensor { Dtype = dtype, Shape = { 1, 4 }, Data = ByteString.CopyFrom(data) },
            };
            var hidden = Assert.IsType<RingHiddenStates>(RingCodec.Decode(wire, RingSamples.Limits).Payload);
            Assert.Equal((1, 4), (hidden.Rows, hidden.Width));
            Assert.Equal(values, hidden.Values);
        }
    }

    [Fact]
    public void HiddenStatesWhoseValuesDoNotFillTheirShapeAreNotEncoded()
    {
        var error = Assert.Throws<ArgumentException>(() => RingCodec.Encode(new RingMessage("r1", 7, 5, new RingHiddenStates([1f, 2f, 3f], 2, 2))));
        Assert.Contains("[2, 2] hidden states are 4 values, not 3", error.Message);
    }
}
