using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Exo.Api.OpenAi;

/// <summary>Checks the bearer key when the gateway is configured with API keys (401 otherwise, as OpenAI answers).</summary>
internal sealed class ApiKeyFilter(IOptions<ApiOptions> options) : IEndpointFilter
{
    private readonly byte[][] _keys = options.Value.ApiKeys.Select(Encoding.UTF8.GetBytes).ToArray();

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        if (_keys.Length == 0) return await next(context);
        var header = context.HttpContext.Request.Headers.Authorization.ToString();
        var presented = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? Encoding.UTF8.GetBytes(header[7..].Trim()) : [];
        if (_keys.Any(k => CryptographicOperations.FixedTimeEquals(k, presented))) return await next(context);

        var error = new OpenAiException(401, header.Length == 0
            ? "You didn't provide an API key: send it as 'Authorization: Bearer KEY'"
            : "Incorrect API key provided", null, "invalid_api_key");
        await Apis.OpenAiApi.WriteJson(context.HttpContext, 401, w => OpenAiJson.Error(w, error));
        return Results.Empty;
    }
}
