using Microsoft.AspNetCore.WebUtilities;

namespace Exo.Api.OpenAi;

/// <summary>
/// Answers the /v1 requests that no endpoint takes (an unknown path: 404; a known path with another method: 405) with
/// OpenAI's error object, which SDKs read on every error, instead of routing's empty body; and the /api ones with
/// Ollama's, <c>{"error": "..."}</c>.
/// </summary>
internal static class UnmatchedRequests
{
    public static IApplicationBuilder UseOpenAiErrorsForUnmatchedRequests(this IApplicationBuilder app) =>
        app.UseStatusCodePages(context => AnswerAsync(context.HttpContext));

    /// <summary>Runs for every error status whose response is still empty; the endpoints' own errors are written already.</summary>
    private static Task AnswerAsync(HttpContext http)
    {
        var request = http.Request;
        var ollama = request.Path.StartsWithSegments("/api");
        if (!ollama && !request.Path.StartsWithSegments("/v1")) return Task.CompletedTask;
        var status = http.Response.StatusCode;
        var error = status switch
        {
            StatusCodes.Status404NotFound => new OpenAiException(status, ollama
                    ? $"Invalid URL ({request.Method} {request.Path}): this API serves /api/chat, /api/generate, /api/tags, /api/show, /api/ps, /api/version and /api/cluster"
                    : $"Invalid URL ({request.Method} {request.Path}): this API serves /v1/models, /v1/models/{{model}}, /v1/chat/completions and /v1/completions",
                null, "unknown_url"),
            StatusCodes.Status405MethodNotAllowed => new OpenAiException(status,
                $"{request.Method} is not allowed on {request.Path}; use {http.Response.Headers.Allow}", null, "method_not_allowed"),
            _ => new OpenAiException(status, ReasonPhrases.GetReasonPhrase(status), null, null, status >= 500 ? "server_error" : "invalid_request_error"),
        };
        return Apis.EndpointIo.WriteJson(http, status, w =>
        {
            if (ollama) Ollama.OllamaJson.Error(w, error.Message);
            else OpenAiJson.Error(w, error);
        });
    }
}
