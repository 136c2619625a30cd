using System.Runtime.InteropServices;
using Exo.Contracts.V1;
using Exo.Inference.Pipeline;
using Exo.Inference.Sampling;
using Google.Protobuf;
using DTypes = Exo.Inference.Weights.DTypes;
using Finish = Exo.Inference.Generation.FinishReason;
using WireFinish = Exo.Contracts.V1.FinishReason;

namespace Exo.Ring;

/// <summary>
/// The one translation between <see cref="RingMessage"/> and the wire's <see cref="ForwardMessage"/>, both ways, for
/// gateways and stages alike. Everything read from the wire is checked here: nothing a peer sends is trusted, lengths
/// least of all.
/// </summary>
public static class RingCodec
{
    /// <summary>More positions than any model has: what bounds rows, token counts and indexes when the model is unknown.</summary>
    public const int MaxPositions = 1 << 24;

    public static ForwardMessage Encode(RingMessage message)
    {
        var wire = new ForwardMessage
        {
            RequestId = message.RequestId,
            PlacementVersion = message.PlacementVersion,
            Position = checked((uint)message.Position),
            Setup = message.Setup is { } setup ? Encode(setup) : null,
        };
        switch (message.Payload)
        {
            case RingTokens tokens:
                wire.Tokens = new TokenIds { Ids = { Encode(tokens.Ids) } };
                break;
            case RingHiddenStates hidden:
                wire.HiddenStates = Encode(hidden);
                break;
            case RingSampledToken sampled:
                wire.Sampled = Encode(sampled);
                break;
            case RingError error:
                wire.Error = new RequestError { Code = Encode(error.Code), Message = error.Message };
                break;
            default:
                throw new ArgumentException($"{message.Payload.GetType().Name} is not a ring payload", nameof(message));
        }

        return wire;
    }

    /// <summary>Reads what routing needs, checking nothing: the receiver decodes the rest once it knows the model.</summary>
    public static RingHeader ReadHeader(ForwardMessage message) =>
        new(message.RequestId, message.PlacementVersion, Kind(message.PayloadCase), message.Setup?.ModelId);

    /// <summary>Decodes and checks a message against what the receiver knows of the model.</summary>
    /// <exception cref="RingMessageException">The message is malformed or does not fit the model.</exception>
    public static RingMessage Decode(ForwardMessage message, RingLimits limits)
    {
        if (message.RequestId.Length == 0) throw new RingMessageException("a message without a request id");
        var maxPositions = limits.MaxPositions ?? MaxPositions;
        if (message.Position >= maxPositions) throw new RingMessageException($"a message at position {message.Position}; the model has {maxPositions} positions");
        var kind = Kind(message.PayloadCase);
        if (message.Setup is not null && kind is not (RingPayloadKind.Tokens or RingPayloadKind.HiddenStates))
            throw new RingMessageException($"a request setup rides with the request's first rows, not with a {kind} message");
        if (message.Setup is null && message.Position == 0 && kind is (RingPayloadKind.Tokens or RingPayloadKind.HiddenStates))
            throw new RingMessageException("rows at position 0 open a request, but the message carries no request setup");

        var setup = message.Setup is { } wireSetup ? Decode(wireSetup, limits, maxPositions) : null;
        RingPayload payload = kind switch
        {
            RingPayloadKind.Tokens => Decode(message.Tokens, limits, maxPositions),
            RingPayloadKind.HiddenStates => Decode(message.HiddenStates, limits, maxPositions),
            RingPayloadKind.Sampled => Decode(message.Sampled, limits, maxPositions),
            RingPayloadKind.Error => new RingError(Decode(message.Error.Code), message.Error.Message),
            _ => throw new RingMessageException("a message that carries nothing: no token ids, hidden states, sampled token or error"),
        };
        var rows = payload switch { RingTokens tokens => tokens.Ids.Length, RingHiddenStates hidden => hidden.Rows, _ => 0 };
        if (message.Position + (long)rows > maxPositions)
            throw new RingMessageException($"rows at positions {message.Position} to {message.Position + (long)rows - 1}; the model has {maxPositions} positions");
        if (setup is not null && message.Position != 0)
            throw new RingMessageException($"a request setup rides with the request's rows at position 0, not at position {message.Position}");
        return new RingMessage(message.RequestId, message.PlacementVersion, (int)message.Position, payload, setup);
    }

    private static RingPayloadKind Kind(ForwardMessage.PayloadOneofCase payload) => payload switch
    {
        ForwardMessage.PayloadOneofCase.Tokens => RingPayloadKind.Tokens,
        ForwardMessage.PayloadOneofCase.HiddenStates => RingPayloadKind.HiddenStates,
        ForwardMessage.PayloadOneofCase.Sampled => RingPayloadKind.Sampled,
        ForwardMessage.PayloadOneofCase.Error => RingPayloadKind.Error,
        _ => RingPayloadKind.None,
    };

    private static RequestSetup Encode(RingSetup setup)
    {
        var options = setup.Options;
        var sampling = options.Sampling;
        var wire = new RequestSetup
        {
            ModelId = setup.ModelId,
            Sampling = new SamplingParams
            {
                Temperature = sampling.Temperature,
                TopK = checked((uint)sampling.TopK),
                TopP = sampling.TopP,
                MinP = sampling.MinP,
                RepetitionPenalty = sampling.RepetitionPenalty,
                FrequencyPenalty = sampling.FrequencyPenalty,
                PresencePenalty = sampling.PresencePenalty,
            },
            ContextTokens = checked((uint)options.ContextTokens),
            MaxTokens = checked((uint)options.MaxNewTokens),
            EndTokenIds = { Encode(options.EndTokens) },
            Prompt = { Encode(options.Prompt) },
            Traceparent = setup.Traceparent ?? "",
        };
        if (sampling.Seed is { } seed) wire.Sampling.Seed = seed;
        foreach (var (token, bias) in sampling.LogitBias ?? new Dictionary<int, float>()) wire.Sampling.LogitBias[checked((uint)token)] = bias;
        if (options.TopLogprobs is { } top) wire.TopLogprobs = checked((uint)top);
        if (options.Output is { } output)
        {
            wire.Output = new Contracts.V1.OutputConstraint { Prefix = output.Prefix, Suffix = output.Suffix };
            if (output.Schema is { } schema) wire.Output.Schema = schema;
            wire.GeneratedTokens = checked((uint)options.Generated);
        }

        return wire;
    }

    private static RingSetup Decode(RequestSetup setup, RingLimits limits, int maxPositions)
    {
        if (setup.ModelId.Length == 0) throw new RingMessageException("the request setup names no model");
        var sampling = setup.Sampling ?? throw new RingMessageException("the request setup has no sampling parameters");
        if (setup.ContextTokens == 0 || setup.ContextTokens > maxPositions)
            throw new RingMessageException($"a context of {setup.ContextTokens} tokens; the model takes 1 to {maxPositions}");
        if (setup.MaxTokens == 0 || setup.MaxTokens > setup.ContextTokens)
            throw new RingMessageException($"max_tokens {setup.MaxTokens} must be in [1, context {setup.ContextTokens}]");
        if (setup.Prompt.Count == 0 || setup.Prompt.Count + setup.MaxTokens > setup.ContextTokens)
            throw new RingMessageException($"a prompt of {setup.Prompt.Count} tokens plus {setup.MaxTokens} new ones does not fit a context of {setup.ContextTokens}");
        if (setup.GeneratedTokens > setup.Prompt.Count || (setup.GeneratedTokens > 0 && setup.Output is null))
            throw new RingMessageException($"{setup.GeneratedTokens} generated tokens at the end of a prompt of {setup.Prompt.Count}, with{(setup.Output is null ? "out" : "")} an output constraint");
        if (setup.HasTopLogprobs && setup.TopLogprobs > TokenLogprobs.MaxTop)
            throw new RingMessageException($"top_logprobs {setup.TopLogprobs} is above {TokenLogprobs.MaxTop}");

        var parameters = new SamplingParameters
        {
            Temperature = sampling.Temperature,
            TopK = (int)Math.Min(sampling.TopK, int.MaxValue),
            TopP = sampling.TopP,
            MinP = sampling.MinP,
            RepetitionPenalty = sampling.RepetitionPenalty,
            FrequencyPenalty = sampling.FrequencyPenalty,
            PresencePenalty = sampling.PresencePenalty,
            Seed = sampling.HasSeed ? sampling.Seed : null,
            LogitBias = LogitBias(sampling.LogitBias, limits),
        };
        try
        {
            parameters.Validate();
        }
        catch (ArgumentException e)
        {
            throw new RingMessageException(e.Message);
        }

        var options = new RequestOptions(
            (int)setup.ContextTokens,
            parameters,
            (int)setup.MaxTokens,
            TokenIds(setup.EndTokenIds, limits, "end_token_ids").ToHashSet(),
            TokenIds(setup.Prompt, limits, "the setup's prompt"),
            setup.HasTopLogprobs ? (int)setup.TopLogprobs : null,
            Decode(setup.Output),
            (int)setup.GeneratedTokens);
        return new RingSetup(setup.ModelId, options, setup.Traceparent.Length == 0 ? null : setup.Traceparent);
    }

    private static Dictionary<int, float>? LogitBias(Google.Protobuf.Collections.MapField<uint, float> wire, RingLimits limits)
    {
        if (wire.Count == 0) return null;
        if (wire.Count > SamplingParameters.MostBiasedTokens) throw new RingMessageException($"a logit_bias of {wire.Count} tokens; at most {SamplingParameters.MostBiasedTokens} are taken");
        var bias = new Dictionary<int, float>(wire.Count);
        foreach (var (token, value) in wire)
        {
            if (token > int.MaxValue || (limits.VocabSize is { } vocab && token >= vocab))
                throw new RingMessageException($"logit_bias names token {token}, outside the vocabulary{(limits.VocabSize is { } v ? $" of {v}" : "")}");
            if (!(value >= -100 && value <= 100)) throw new RingMessageException($"logit_bias {value} for token {token} is outside [-100, 100]");
            bias[(int)token] = value;
        }

        return bias;
    }

    /// <summary>The most characters of an output constraint's text (its schema, prefix and suffix together) the codec takes.</summary>
    public const int MostConstraintChars = 1 << 20;

    private static Inference.Sampling.OutputConstraint? Decode(Contracts.V1.OutputConstraint? output)
    {
        if (output is null) return null;
        var length = (long)output.Prefix.Length + output.Suffix.Length + (output.HasSchema ? output.Schema.Length : 0);
        if (length > MostConstraintChars) throw new RingMessageException($"an output constraint of {length} characters; at most {MostConstraintChars} are taken");
        return new Inference.Sampling.OutputConstraint(output.Prefix, output.HasSchema ? output.Schema : null, output.Suffix);
    }

    private static RingTokens Decode(TokenIds tokens, RingLimits limits, int maxPositions)
    {
        if (tokens.Ids.Count == 0 || tokens.Ids.Count > maxPositions)
            throw new RingMessageException($"a prompt of {tokens.Ids.Count} token ids; the model takes 1 to {maxPositions}");
        return new RingTokens(TokenIds(tokens.Ids, limits, "the prompt"));
    }

    /// <summary>Hidden states travel as f32 so that a split model computes exactly what the whole one does.</summary>
    private static Contracts.V1.Tensor Encode(RingHiddenStates hidden)
    {
        if (hidden.Values.Length != (long)hidden.Rows * hidden.Width)
            throw new ArgumentException($"[{hidden.Rows}, {hidden.Width}] hidden states are {(long)hidden.Rows * hidden.Width} values, not {hidden.Values.Length}", nameof(hidden));
        return new Contracts.V1.Tensor
        {
            Dtype = Contracts.V1.DType.F32,
            Shape = { checked((uint)hidden.Rows), checked((uint)hidden.Width) },
            Data = ByteString.CopyFrom(MemoryMarshal.AsBytes(hidden.Values.AsSpan())),
        };
    }

    /// <summary>Reads [rows, width] hidden states sent as f32, f16 or bf16, little-endian.</summary>
    private static RingHiddenStates Decode(Contracts.V1.Tensor tensor, RingLimits limits, int maxPositions)
    {
        if (tensor.Shape.Count != 2 || tensor.Shape[1] == 0 || limits.HiddenSize is { } expected && tensor.Shape[1] != expected)
            throw new RingMessageException($"hidden states must be [rows, {limits.HiddenSize?.ToString() ?? "width"}], got [{string.Join(", ", tensor.Shape)}]");
        var (rows, width) = (tensor.Shape[0], tensor.Shape[1]);
        if (rows == 0 || rows > maxPositions) throw new RingMessageException($"hidden states of {rows} rows; the model takes 1 to {maxPositions}");
        var size = tensor.Dtype switch
        {
            Contracts.V1.DType.F32 => 4,
            Contracts.V1.DType.F16 or Contracts.V1.DType.Bf16 => 2,
            _ => throw new RingMessageException($"hidden states of dtype {tensor.Dtype}; F32, F16 or BF16 expected"),
        };
        // Rows and width are bounded by 2^24 and 2^32, so the product cannot overflow a long; matching the bytes
        // received then bounds it by the message's size before anything is allocated.
        var count = (long)rows * width;
        if (tensor.Data.Length != count * size)
            throw new RingMessageException($"hidden states [{rows}, {width}] of {tensor.Dtype} need {count * size} bytes, the message has {tensor.Data.Length}");

        var values = new float[count];
        var bytes = tensor.Data.Span;
        switch (tensor.Dtype)
        {
            case Contracts.V1.DType.F32:
                MemoryMarshal.Cast<byte, float>(bytes).CopyTo(values);
                break;
            case Contracts.V1.DType.F16:
                var halves = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (var i = 0; i < values.Length; i++) values[i] = DTypes.HalfToSingle(halves[i]);
                break;
            default:
                var brains = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (var i = 0; i < values.Length; i++) values[i] = DTypes.BFloat16ToSingle(brains[i]);
                break;
        }

        return new RingHiddenStates(values, (int)rows, (int)width);
    }

    private static SampledToken Encode(RingSampledToken sampled)
    {
        var wire = new SampledToken
        {
            TokenId = checked((uint)sampled.Token),
            Index = checked((uint)sampled.Index),
            Finish = Encode(sampled.Finish),
        };
        if (sampled.Logprobs is { } logprobs)
        {
            wire.Logprob = logprobs.Logprob;
            wire.TopLogprobs.Add(logprobs.Top.Select(top => new TopLogprob { TokenId = checked((uint)top.Token), Logprob = top.Logprob }));
        }

        return wire;
    }

    private static RingSampledToken Decode(SampledToken sampled, RingLimits limits, int maxPositions)
    {
        var token = TokenId(sampled.TokenId, limits, "the sampled token");
        if (sampled.Index >= maxPositions) throw new RingMessageException($"a sampled token of index {sampled.Index}; the model has {maxPositions} positions");
        if (!sampled.HasLogprob && sampled.TopLogprobs.Count > 0) throw new RingMessageException("top logprobs without the sampled token's own logprob");
        if (sampled.TopLogprobs.Count > TokenLogprobs.MaxTop)
            throw new RingMessageException($"{sampled.TopLogprobs.Count} top logprobs; at most {TokenLogprobs.MaxTop} are ever asked for");

        var logprobs = sampled.HasLogprob
            ? new TokenLogprobs(
                Logprob(sampled.Logprob, "the sampled token"),
                sampled.TopLogprobs.Select(top => new TokenLogprob(TokenId(top.TokenId, limits, "top_logprobs"), Logprob(top.Logprob, "a top logprob"))).ToArray())
            : null;
        return new RingSampledToken(token, (int)sampled.Index, Decode(sampled.Finish), logprobs);
    }

    private static float Logprob(float logprob, string what) =>
        logprob <= 0 ? logprob : throw new RingMessageException($"{what} has logprob {logprob}; a log-probability is at most 0");

    private static WireFinish Encode(Finish? finish) => finish switch
    {
        null => WireFinish.Unspecified,
        Finish.Stop => WireFinish.Stop,
        Finish.Length => WireFinish.Length,
        _ => throw new ArgumentOutOfRangeException(nameof(finish), finish, "not a finish reason"),
    };

    private static Finish? Decode(WireFinish finish) => finish switch
    {
        WireFinish.Unspecified => null,
        WireFinish.Stop => Finish.Stop,
        WireFinish.Length => Finish.Length,
        _ => throw new RingMessageException($"unknown finish reason {(int)finish}"),
    };

    private static RequestError.Types.Code Encode(RingErrorCode code) => code switch
    {
        RingErrorCode.Capacity => RequestError.Types.Code.Capacity,
        RingErrorCode.StalePlacement => RequestError.Types.Code.StalePlacement,
        RingErrorCode.NotReady => RequestError.Types.Code.NotReady,
        RingErrorCode.Failed => RequestError.Types.Code.Failed,
        _ => throw new ArgumentOutOfRangeException(nameof(code), code, "not an error code"),
    };

    private static RingErrorCode Decode(RequestError.Types.Code code) => code switch
    {
        RequestError.Types.Code.Capacity => RingErrorCode.Capacity,
        RequestError.Types.Code.StalePlacement => RingErrorCode.StalePlacement,
        RequestError.Types.Code.NotReady => RingErrorCode.NotReady,
        RequestError.Types.Code.Failed => RingErrorCode.Failed,
        _ => throw new RingMessageException($"an error of unknown code {(int)code}"),
    };

    private static IEnumerable<uint> Encode(IEnumerable<int> ids) => ids.Select(id => checked((uint)id));

    private static int[] TokenIds(IReadOnlyList<uint> ids, RingLimits limits, string what)
    {
        var tokens = new int[ids.Count];
        for (var i = 0; i < tokens.Length; i++) tokens[i] = TokenId(ids[i], limits, what);
        return tokens;
    }

    /// <summary>A token id within the vocabulary; when the receiver knows none, within what an int holds.</summary>
    private static int TokenId(uint id, RingLimits limits, string what) => limits.VocabSize switch
    {
        { } vocab when id >= vocab => throw new RingMessageException($"{what} holds token id {id}; the vocabulary has {vocab}"),
        null when id > int.MaxValue => throw new RingMessageException($"{what} holds token id {id}, beyond any vocabulary"),
        _ => (int)id,
    };
}
