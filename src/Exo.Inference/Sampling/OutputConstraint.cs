namespace Exo.Inference.Sampling;

/// <summary>
/// What a request's output must be, enforced by constrained decoding where the request is sampled: <paramref name="Prefix"/>,
/// then one JSON value matching <paramref name="Schema"/> (JSON Schema as text; any JSON object when null), then
/// <paramref name="Suffix"/>, then an end token.
/// </summary>
public sealed record OutputConstraint(string Prefix, string? Schema, string Suffix);
