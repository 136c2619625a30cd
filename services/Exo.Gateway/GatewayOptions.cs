namespace Exo.Gateway;

/// <summary>The gateway's settings (section "Gateway"), validated at start.</summary>
public sealed class GatewayOptions
{
    public const string Section = "Gateway";

    /// <summary>When any are set, every request but health and the web chat's page needs "Authorization: Bearer KEY" with one of them.</summary>
    public List<string> ApiKeys { get; set; } = [];

    /// <summary>Larger request bodies are refused with 413 before they are read; smaller ones are buffered, for a retry.</summary>
    public long MaxRequestBodyBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>Requests each client (API key, or address without keys) may make per window; 0 turns the limit off.</summary>
    public int RateLimitRequests { get; set; } = 600;

    public int RateLimitWindowSeconds { get; set; } = 60;

    /// <summary>
    /// How long a proxied request may pass no bytes before it is cut: long enough for a queued request's wait and a
    /// long prompt's prefill, so that streams are never cut while the API is working on them.
    /// </summary>
    public int ActivityTimeoutSeconds { get; set; } = 600;

    public void Validate()
    {
        if (MaxRequestBodyBytes <= 0) throw new InvalidOperationException($"{Section}:MaxRequestBodyBytes must be positive");
        if (RateLimitRequests < 0) throw new InvalidOperationException($"{Section}:RateLimitRequests must not be negative (0 turns the limit off)");
        if (RateLimitWindowSeconds <= 0 || ActivityTimeoutSeconds <= 0)
            throw new InvalidOperationException($"{Section}:RateLimitWindowSeconds and ActivityTimeoutSeconds must be positive");
        if (ApiKeys.Any(string.IsNullOrWhiteSpace)) throw new InvalidOperationException($"{Section}:ApiKeys must not hold empty keys");
    }
}
