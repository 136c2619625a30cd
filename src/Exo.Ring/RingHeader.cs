namespace Exo.Ring;

/// <summary>
/// What a receiver reads of a message before it knows which model it is for, and so before it can decode the rest:
/// enough to route it and to check its placement. Nothing in it is checked yet.
/// </summary>
/// <param name="ModelId">The model its setup names; null when it has no setup (every message but a request's first).</param>
public sealed record RingHeader(string RequestId, ulong PlacementVersion, RingPayloadKind Kind, string? ModelId);

public enum RingPayloadKind
{
    None,
    Tokens,
    HiddenStates,
    Sampled,
    Error,
}
