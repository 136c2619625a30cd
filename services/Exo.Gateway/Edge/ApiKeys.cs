using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Exo.Gateway.Edge;

/// <summary>
/// The configured API keys (blank ones ignored). A presented key is compared with every configured one, as SHA-256
/// digests of equal length, without stopping at a match: the time taken tells neither a key's length nor which matched.
/// </summary>
public sealed class ApiKeys(IOptions<GatewayOptions> options)
{
    private readonly byte[][] _keys = options.Value.ApiKeys.Where(k => !string.IsNullOrWhiteSpace(k))
        .Select(k => SHA256.HashData(Encoding.UTF8.GetBytes(k.Trim()))).ToArray();

    public bool Required => _keys.Length > 0;

    public static string? Presented(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : null;
    }

    /// <summary>The request's bearer key when it is one of the configured keys.</summary>
    public string? Match(HttpRequest request)
    {
        if (Presented(request) is not { } presented) return null;
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        var matched = false;
        foreach (var key in _keys) matched |= CryptographicOperations.FixedTimeEquals(key, digest);
        return matched ? presented : null;
    }
}

/// <summary>
/// Lets a request through only with a configured key, when keys are configured (401 otherwise, as OpenAI answers): every
/// route but those mapped open to anonymous callers, which are health and the web chat's page (so that it can ask for a key).
/// </summary>
internal sealed class ApiKeyCheck(ApiKeys keys) : IMiddleware
{
    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (!keys.Required || context.GetEndpoint()?.Metadata.GetMetadata<IAllowAnonymous>() is not null || keys.Match(context.Request) is not null)
            return next(context);
        context.Response.Headers.WWWAuthenticate = "Bearer";
        return OpenAiError.WriteAsync(context, 401, ApiKeys.Presented(context.Request) is null
            ? "You didn't provide an API key: send it as 'Authorization: Bearer KEY'"
            : "Incorrect API key provided", "invalid_api_key");
    }
}
