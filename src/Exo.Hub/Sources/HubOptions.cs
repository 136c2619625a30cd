namespace Exo.Hub;

/// <summary>Where the hub is and the token that opens gated and private repositories, read as huggingface_hub reads them.</summary>
public sealed record HubOptions(Uri Endpoint, string? Token)
{
    public static readonly Uri DefaultEndpoint = new("https://huggingface.co");

    /// <summary><c>HF_ENDPOINT</c> (default https://huggingface.co) and <c>HF_TOKEN</c>.</summary>
    public static HubOptions FromEnvironment(string? endpoint = null) =>
        new(ParseEndpoint(endpoint ?? Environment.GetEnvironmentVariable("HF_ENDPOINT")), Environment.GetEnvironmentVariable("HF_TOKEN") is { Length: > 0 } token ? token.Trim() : null);

    public static Uri ParseEndpoint(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return DefaultEndpoint;
        if (!Uri.TryCreate(text.Trim().TrimEnd('/'), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Query.Length > 0)
            throw new ArgumentException($"'{text}' is not a hub endpoint: give an http(s) URL such as https://huggingface.co (HF_ENDPOINT)");
        return uri;
    }
}
