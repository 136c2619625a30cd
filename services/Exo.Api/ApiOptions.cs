namespace Exo.Api;

/// <summary>
/// The API service's settings (section "Api"), validated at start. API keys and rate limits belong to the gateway in
/// front of it: the API trusts its gateway, but still bounds the bodies it reads, which it holds whole.
/// </summary>
public sealed class ApiOptions
{
    /// <summary>Model folders to serve; each is served under its folder name.</summary>
    public List<string> Models { get; set; } = [];

    /// <summary>Requests waiting for KV cache on their model's ring, over all models; more are refused with 429.</summary>
    public int MaxWaitingRequests { get; set; } = 64;

    /// <summary>KV cache memory for in-process generation.</summary>
    public long KvCacheMegabytes { get; set; } = 512;

    /// <summary>How long a request waits for its next token from the cluster before it fails (a worker may have vanished).</summary>
    public int TokenTimeoutSeconds { get; set; } = 120;

    /// <summary>How long a request whose ring lost a worker waits for the re-planned ring before the client hears of it.</summary>
    public int ResumeTimeoutSeconds { get; set; } = 30;

    /// <summary>Longer request bodies are refused with 413 as they are read, before they are held in memory.</summary>
    public long MaxRequestBodyBytes { get; set; } = 8 * 1024 * 1024;

    public void Validate()
    {
        if (Models.Count == 0) throw new InvalidOperationException("no model is configured: set Api:Models:0 (or Api__Models__0) to a model folder");
        if (MaxWaitingRequests < 0 || KvCacheMegabytes <= 0 || TokenTimeoutSeconds <= 0 || ResumeTimeoutSeconds <= 0)
            throw new InvalidOperationException("Api:KvCacheMegabytes, TokenTimeoutSeconds and ResumeTimeoutSeconds must be positive, MaxWaitingRequests not negative");
        if (MaxRequestBodyBytes <= 0 || MaxRequestBodyBytes > Array.MaxLength)
            throw new InvalidOperationException($"Api:MaxRequestBodyBytes must be between 1 and {Array.MaxLength}");
    }
}
