using Microsoft.AspNetCore.WebUtilities;

namespace Exo.Api.OpenAi;

/// <summary>
/// Answers the /v1 requests that no endpoint takes (an unknown path: 404; a known path with another method: 405) with
/// OpenAI's error object, which SDKs read on every error, instead of routing's empty body.
/// </summary>
internal static class UnmatchedRequests
{
    public static IApplicationBuilder UseOpenAiErrorsForUnmatchedRequests(this IApplicationBuilder app) =>
        app.UseStatusCodePages(context => AnswerAsync(context.HttpContext));

    /// <summary>Runs for every error status whose response is still empty; the endpoints' own errors are written already.</summary>
    private static Task AnswerAsync(HttpContext http)
    {
        var request = http.Request;
        if (!request.Path.StartsWithSegments("/v1")) return Task.CompletedTask;
        var status = http.Response.StatusCode;
        var error = status switch
        {
            StatusCodes.Status404NotFound => new OpenAiException(status,
                $"Invalid URL ({request.Method} {request.Path}): this API serves /v1/models, /v1/models/{{model}}, /v1/chat/completions and /v1/completions",
                null, "unknown_url"),
            StatusCodes.Status405MethodNotAllowed => new OpenAiException(status,
                $"{request.Method} is not allowed on {request.Path}; use {http.Response.Headers.Allow}", null, "method_not_allowed"),
            _ => new OpenAiException(status, ReasonPhrases.GetReasonPhrase(status), null, null, status >= 500 ? "server_error" : "invalid_request_error"),
        };
        return Apis.EndpointIo.WriteJson(http, status, w => OpenAiJson.Error(w, error));
    }
}
