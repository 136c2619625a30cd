using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;

namespace Exo.Gateway.Edge;

/// <summary>The configured API keys, compared in constant time.</summary>
public sealed class ApiKeys(IOptions<GatewayOptions> options)
{
    private readonly byte[][] _keys = options.Value.ApiKeys.Select(k => Encoding.UTF8.GetBytes(k.Trim())).ToArray();

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
        var bytes = Encoding.UTF8.GetBytes(presented);
        return _keys.Any(k => CryptographicOperations.FixedTimeEquals(k, bytes)) ? presented : null;
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
