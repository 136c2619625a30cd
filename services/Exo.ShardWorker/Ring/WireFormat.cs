using System.Runtime.InteropServices;
using Exo.Contracts.V1;
using Exo.Inference.Model;
using Exo.Inference.Pipeline;
using Exo.Inference.Sampling;
using Exo.Inference.Weights;
using Google.Protobuf;

namespace Exo.ShardWorker.Ring;

/// <summary>A message that cannot be acted on; its text goes back to the gateway.</summary>
public sealed class WireFormatException(string message) : Exception(message);

/// <summary>Between the engine's types and the ring's messages; every field read from the wire is checked here.</summary>
public static class WireFormat
{
    /// <summary>Hidden states travel as f32 so that a split model computes exactly what the whole one does.</summary>
    public static Contracts.V1.Tensor EncodeHidden(ReadOnlySpan<float> hidden, int rows, int width) => new()
    {
        Dtype = Contracts.V1.DType.F32,
        Shape = { (uint)rows, (uint)width },
        Data = ByteString.CopyFrom(MemoryMarshal.AsBytes(hidden)),
    };

    /// <summary>Reads [rows, width] hidden states sent as f32, f16 or bf16.</summary>
    public static float[] DecodeHidden(Contracts.V1.Tensor tensor, int width, int maxRows)
    {
        if (tensor.Shape.Count != 2 || tensor.Shape[1] != width)
            throw new WireFormatException($"hidden states must be [rows, {width}], got [{string.Join(", ", tensor.Shape)}]");
        var rows = tensor.Shape[0];
        if (rows == 0 || rows > maxRows) throw new WireFormatException($"hidden states of {rows} rows; this request takes 1 to {maxRows}");
        var size = tensor.Dtype switch
        {
            Contracts.V1.DType.F32 => 4,
            Contracts.V1.DType.F16 or Contracts.V1.DType.Bf16 => 2,
            _ => throw new WireFormatException($"hidden states of dtype {tensor.Dtype}; F32, F16 or BF16 expected"),
        };
        var count = checked((int)rows * width);
        if (tensor.Data.Length != (long)count * size)
            throw new WireFormatException($"hidden states [{rows}, {width}] of {tensor.Dtype} need {(long)count * size} bytes, the message has {tensor.Data.Length}");

        var values = new float[count];
        var bytes = tensor.Data.Span;
        switch (tensor.Dtype)
        {
            case Contracts.V1.DType.F32:
                MemoryMarshal.Cast<byte, float>(bytes).CopyTo(values);
                break;
            case Contracts.V1.DType.F16:
                var halves = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (var i = 0; i < count; i++) values[i] = DTypes.HalfToSingle(halves[i]);
                break;
            default:
                var brains = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (var i = 0; i < count; i++) values[i] = DTypes.BFloat16ToSingle(brains[i]);
                break;
        }

        return values;
    }

    /// <summary>Token ids, each checked against the vocabulary.</summary>
    public static int[] DecodeTokens(IReadOnlyList<uint> ids, int vocabSize, string what)
    {
        var tokens = new int[ids.Count];
        for (var i = 0; i < tokens.Length; i++)
        {
            if (ids[i] >= vocabSize) throw new WireFormatException($"{what} holds token id {ids[i]}; the vocabulary has {vocabSize}");
            tokens[i] = (int)ids[i];
        }

        return tokens;
    }

    public static RequestOptions DecodeSetup(RequestSetup setup, ModelConfig config)
    {
        var sampling = setup.Sampling ?? throw new WireFormatException("the request setup has no sampling parameters");
        if (setup.ContextTokens == 0 || setup.ContextTokens > config.MaxPositionEmbeddings)
            throw new WireFormatException($"a context of {setup.ContextTokens} tokens; the model takes 1 to {config.MaxPositionEmbeddings}");
        if (setup.MaxTokens == 0 || setup.MaxTokens > setup.ContextTokens)
            throw new WireFormatException($"max_tokens {setup.MaxTokens} must be in [1, context {setup.ContextTokens}]");
        if (setup.Prompt.Count == 0 || setup.Prompt.Count + setup.MaxTokens > setup.ContextTokens)
            throw new WireFormatException($"a prompt of {setup.Prompt.Count} tokens plus {setup.MaxTokens} new ones does not fit a context of {setup.ContextTokens}");
        if (setup.HasTopLogprobs && setup.TopLogprobs > TokenLogprobs.MaxTop)
            throw new WireFormatException($"top_logprobs {setup.TopLogprobs} is above {TokenLogprobs.MaxTop}");

        var parameters = new SamplingParameters
        {
            Temperature = sampling.Temperature,
            TopK = checked((int)Math.Min(sampling.TopK, int.MaxValue)),
            TopP = sampling.TopP,
            MinP = sampling.MinP,
            RepetitionPenalty = sampling.RepetitionPenalty,
            FrequencyPenalty = sampling.FrequencyPenalty,
            PresencePenalty = sampling.PresencePenalty,
            Seed = sampling.HasSeed ? sampling.Seed : null,
        };
        try
        {
            parameters.Validate();
        }
        catch (ArgumentException e)
        {
            throw new WireFormatException(e.Message);
        }

        return new RequestOptions(
            (int)setup.ContextTokens,
            parameters,
            (int)setup.MaxTokens,
            DecodeTokens(setup.EndTokenIds, config.VocabSize, "end_token_ids").ToHashSet(),
            DecodeTokens(setup.Prompt, config.VocabSize, "the prompt"),
            setup.HasTopLogprobs ? (int)setup.TopLogprobs : null);
    }

    public static SampledToken EncodeToken(TokenResult result)
    {
        var sampled = new SampledToken
        {
            TokenId = (uint)result.Token,
            Index = (uint)result.Index,
            Finish = result.Finish switch
            {
                Inference.Generation.FinishReason.Stop => Contracts.V1.FinishReason.Stop,
                Inference.Generation.FinishReason.Length => Contracts.V1.FinishReason.Length,
                _ => Contracts.V1.FinishReason.Unspecified,
            },
        };
        if (result.Logprobs is { } logprobs)
        {
            sampled.Logprob = logprobs.Logprob;
            foreach (var top in logprobs.Top) sampled.TopLogprobs.Add(new TopLogprob { TokenId = (uint)top.Token, Logprob = top.Logprob });
        }

        return sampled;
    }
}
