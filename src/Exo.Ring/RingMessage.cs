using Exo.Inference.Generation;
using Exo.Inference.Pipeline;
using Exo.Inference.Sampling;

namespace Exo.Ring;

/// <summary>
/// One message on a ring edge, as <see cref="RingCodec"/> decodes it: what it carries for one request, the placement
/// version its sender ran, and the absolute position of its first row.
/// </summary>
/// <param name="Setup">With a request's first rows only: what every stage needs to admit it.</param>
public sealed record RingMessage(string RequestId, ulong PlacementVersion, int Position, RingPayload Payload, RingSetup? Setup = null)
{
    /// <summary>An error ends the request wherever it is; it names no placement or position.</summary>
    public static RingMessage Failure(string requestId, RingErrorCode code, string text) => new(requestId, 0, 0, new RingError(code, text));
}

/// <summary>What every stage needs to admit a request.</summary>
/// <param name="ModelId">The model folder's name; a worker may serve several models.</param>
/// <param name="Traceparent">
/// W3C trace context of the gateway's span for the request, so that every stage's spans join its trace although the
/// streams are shared by all requests; null when the gateway traces nothing.
/// </param>
public sealed record RingSetup(string ModelId, RequestOptions Options, string? Traceparent);

/// <summary>What a ring message carries.</summary>
public abstract record RingPayload;

/// <summary>A prompt's token ids, from a gateway to the first stage.</summary>
public sealed record RingTokens(int[] Ids) : RingPayload;

/// <summary>[<paramref name="Rows"/>, <paramref name="Width"/>] hidden states, row-major, from a stage to the next.</summary>
public sealed record RingHiddenStates(float[] Values, int Rows, int Width) : RingPayload;

/// <summary>A token the last stage sampled, going round to the first stage and on to the gateway.</summary>
/// <param name="Index">0 for the request's first generated token.</param>
/// <param name="Finish">Null while the generation goes on.</param>
public sealed record RingSampledToken(int Token, int Index, FinishReason? Finish, TokenLogprobs? Logprobs) : RingPayload;

/// <summary>Why a request ended early; stages relay it towards the gateway.</summary>
public sealed record RingError(RingErrorCode Code, string Message) : RingPayload;

public enum RingErrorCode
{
    /// <summary>A stage has no KV cache memory left for the request: retry later.</summary>
    Capacity,
    /// <summary>The message was sent for another placement version than the stage runs: the ring is being re-planned.</summary>
    StalePlacement,
    /// <summary>The stage is still loading its layers, or does not serve the model or request.</summary>
    NotReady,
    Failed,
}
