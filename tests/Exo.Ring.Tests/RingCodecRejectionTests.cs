using Exo.Contracts.V1;
using Google.Protobuf;

namespace Exo.Ring.Tests;

/// <summary>
/// A message that is malformed, or does not fit the model, is refused with an error that says what is wrong: each
/// case spoils one field of a valid message.
/// </summary>
public sealed class RingCodecRejectionTests
{
    private static readonly Dictionary<string, (Func<ForwardMessage> Wire, string Reason)> Cases = new()
    {
        ["no request id"] = (Spoil("a prompt with every option", m => m.RequestId = ""), "a message without a request id"),
        ["no payload"] = (Spoil("a decode step's hidden states", m => m.ClearPayload()), "carries nothing"),
        ["a position beyond the model"] = (Spoil("a decode step's hidden states", m => m.Position = 64), "position 64; the model has 64 positions"),

        ["rows running past the model's positions"] = (Spoil("a decode step's hidden states", m =>
        {
            m.Position = 63;
            m.HiddenStates.Shape[0] = 2;
            m.HiddenStates.Data = ByteString.CopyFrom(new byte[32]);
        }), "rows at positions 63 to 64; the model has 64 positions"),
        ["a setup with later rows"] = (Spoil("a prefill's hidden states with the setup", m => m.Position = 5), "rides with the request's rows at position 0, not at position 5"),

        ["a prompt without its setup"] = (Spoil("a prompt with every option", m => m.Setup = null), "carries no request setup"),
        ["a prefill without its setup"] = (Spoil("a prefill's hidden states with the setup", m => m.Setup = null), "carries no request setup"),
        ["a setup on a sampled token"] =
            (Spoil("a sampled token", m => m.Setup = RingCodec.Encode(RingSamples.Messages["a plain prompt"]).Setup), "rides with the request's first rows, not with a Sampled message"),
        ["a setup without sampling parameters"] = (Spoil("a prompt with every option", m => m.Setup.Sampling = null), "no sampling parameters"),
        ["a setup that names no model"] = (Spoil("a prompt with every option", m => m.Setup.ModelId = ""), "names no model"),
        ["a context beyond the model"] = (Spoil("a prompt with every option", m => m.Setup.ContextTokens = 65), "a context of 65 tokens; the model takes 1 to 64"),
        ["no new tokens"] = (Spoil("a prompt with every option", m => m.Setup.MaxTokens = 0), "max_tokens 0 must be in [1, context 16]"),
        ["a prompt and max_tokens beyond the context"] =
            (Spoil("a prompt with every option", m => m.Setup.MaxTokens = 14), "a prompt of 3 tokens plus 14 new ones does not fit a context of 16"),
        ["too many top logprobs asked for"] = (Spoil("a prompt with every option", m => m.Setup.TopLogprobs = 21), "top_logprobs 21 is above 20"),
        ["sampling out of range"] = (Spoil("a prompt with every option", m => m.Setup.Sampling.TopP = 0), "top_p must be in (0, 1]"),
        ["an end token beyond the vocabulary"] =
            (Spoil("a prompt with every option", m => m.Setup.EndTokenIds.Add(500)), "end_token_ids holds token id 500; the vocabulary has 100"),
        ["a setup's prompt beyond the vocabulary"] =
            (Spoil("a prompt with every option", m => m.Setup.Prompt[1] = 100), "the setup's prompt holds token id 100; the vocabulary has 100"),

        ["more generated tokens than the prompt has"] =
            (Spoil("a resumed prompt with an output constraint and a logit bias", m => m.Setup.GeneratedTokens = 5), "5 generated tokens at the end of a prompt of 4"),
        ["generated tokens without an output constraint"] =
            (Spoil("a resumed prompt with an output constraint and a logit bias", m => m.Setup.Output = null), "2 generated tokens at the end of a prompt of 4, without an output constraint"),
        ["an output constraint beyond the codec's bound"] =
            (Spoil("a resumed prompt with an output constraint and a logit bias", m => m.Setup.Output.Schema = new string(' ', RingCodec.MostConstraintChars)), "at most 1048576 are taken"),
        ["a logit bias beyond the vocabulary"] =
            (Spoil("a resumed prompt with an output constraint and a logit bias", m => m.Setup.Sampling.LogitBias[100] = 1), "logit_bias names token 100, outside the vocabulary of 100"),
        ["a logit bias out of range"] =
            (Spoil("a resumed prompt with an output constraint and a logit bias", m => m.Setup.Sampling.LogitBias[4] = float.NaN), "is outside [-100, 100]"),
        ["an empty prompt"] = (Spoil("a prompt with every option", m => m.Tokens.Ids.Clear()), "a prompt of 0 token ids"),
        ["a prompt token beyond the vocabulary"] = (Spoil("a prompt with every option", m => m.Tokens.Ids[0] = 100), "the prompt holds token id 100; the vocabulary has 100"),

        ["hidden states whose bytes do not match their shape"] =
            (Spoil("a decode step's hidden states", m => m.HiddenStates.Data = ByteString.CopyFrom(new byte[12])), "hidden states [1, 4] of F32 need 16 bytes, the message has 12"),
        ["hidden states with bytes beyond their shape"] =
            (Spoil("a decode step's hidden states", m => m.HiddenStates.Data = ByteString.CopyFrom(new byte[20])), "hidden states [1, 4] of F32 need 16 bytes, the message has 20"),
        ["hidden states claiming more rows than their bytes hold"] =
            (Spoil("a decode step's hidden states", m => m.HiddenStates.Shape[0] = 40), "hidden states [40, 4] of F32 need 640 bytes, the message has 16"),
        ["hidden states of another width than the model's"] =
            (Spoil("a decode step's hidden states", m => m.HiddenStates.Shape[1] = 2), "hidden states must be [rows, 4], got [1, 2]"),
        ["hidden states that are not a matrix"] =
            (Spoil("a decode step's hidden states", m => m.HiddenStates.Shape.Add(1)), "hidden states must be [rows, 4], got [1, 4, 1]"),
        ["hidden states of no rows"] =
            (Spoil("a decode step's hidden states", m => { m.HiddenStates.Shape[0] = 0; m.HiddenStates.Data = ByteString.Empty; }), "hidden states of 0 rows; the model takes 1 to 64"),
        ["hidden states of more rows than the model has positions"] =
            (Spoil("a decode step's hidden states", m => { m.HiddenStates.Shape[0] = 65; m.HiddenStates.Data = ByteString.CopyFrom(new byte[65 * 16]); }), "hidden states of 65 rows"),
        ["hidden states of no dtype"] =
            (Spoil("a decode step's hidden states", m => m.HiddenStates.Dtype = DType.Unspecified), "F32, F16 or BF16 expected"),

        ["an unknown finish reason"] = (Spoil("a sampled token", m => m.Sampled.Finish = (FinishReason)7), "unknown finish reason 7"),
        ["a sampled token beyond the vocabulary"] = (Spoil("a sampled token", m => m.Sampled.TokenId = 100), "the sampled token holds token id 100; the vocabulary has 100"),
        ["a sampled token at an index beyond the model"] = (Spoil("a sampled token", m => m.Sampled.Index = 64), "a sampled token of index 64; the model has 64 positions"),
        ["a logprob that is not a number"] =
            (Spoil("the last token, stopped, with logprobs", m => m.Sampled.Logprob = float.NaN), "the sampled token has logprob NaN; a log-probability is at most 0"),
        ["a positive logprob"] =
            (Spoil("the last token, stopped, with logprobs", m => m.Sampled.TopLogprobs[1].Logprob = 0.5f), "a top logprob has logprob 0.5"),
        ["top logprobs without the token's own"] =
            (Spoil("the last token, stopped, with logprobs", m => m.Sampled.ClearLogprob()), "top logprobs without the sampled token's own logprob"),
        ["more top logprobs than are ever asked for"] =
            (Spoil("the last token, stopped, with logprobs", m => m.Sampled.TopLogprobs.Add(Enumerable.Repeat(new TopLogprob { Logprob = -9 }, 18))), "21 top logprobs; at most 20"),
        ["a top logprob's token beyond the vocabulary"] =
            (Spoil("the last token, stopped, with logprobs", m => m.Sampled.TopLogprobs[0].TokenId = 100), "top_logprobs holds token id 100"),

        ["an error of unknown code"] = (Spoil("a failure", m => m.Error.Code = (RequestError.Types.Code)9), "an error of unknown code 9"),
        ["an error without a code"] = (Spoil("a failure", m => m.Error.Code = RequestError.Types.Code.Unspecified), "an error of unknown code 0"),
    };

    public static TheoryData<string> Names => new(Cases.Keys);

    private static Func<ForwardMessage> Spoil(string sample, Action<ForwardMessage> spoil) => () =>
    {
        var wire = RingCodec.Encode(RingSamples.Messages[sample]);
        spoil(wire);
        return wire;
    };

    [Theory]
    [MemberData(nameof(Names))]
    public void IsRefusedWithItsReason(string name)
    {
        var (wire, reason) = Cases[name];
        var error = Assert.Throws<RingMessageException>(() => RingCodec.Decode(wire(), RingSamples.Limits));
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void AGatewayThatKnowsNoModelStillBoundsWhatItReads()
    {
        var beyondAnyVocabulary = Spoil("a sampled token", m => m.Sampled.TokenId = uint.MaxValue)();
        Assert.Contains("beyond any vocabulary", Assert.Throws<RingMessageException>(() => RingCodec.Decode(beyondAnyVocabulary, RingLimits.Unknown)).Message);

        var farIndex = Spoil("a sampled token", m => m.Sampled.Index = RingCodec.MaxPositions)();
        Assert.Contains($"index {RingCodec.MaxPositions}", Assert.Throws<RingMessageException>(() => RingCodec.Decode(farIndex, RingLimits.Unknown)).Message);

        // What a model would refuse, a receiver that knows none accepts: the stages check it against their model.
        var largeToken = Spoil("a sampled token", m => m.Sampled.TokenId = 150_000)();
        Assert.Equal(150_000, Assert.IsType<RingSampledToken>(RingCodec.Decode(largeToken, RingLimits.Unknown).Payload).Token);
    }
}
