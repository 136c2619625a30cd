using System.Globalization;
using System.Text.Json;
using Exo.Api.Backends;
using Exo.Api.Completions;

namespace Exo.Api.OpenAi;

/// <summary>
/// Answers every failure of an API's endpoints with the matching status and the error body that API's clients read
/// (<see cref="WriteError"/>): the client's mistakes as they were raised, the cluster's state (429 and 503 with
/// Retry-After, 502) from the backend's exceptions, and anything else as a logged 500.
/// </summary>
internal abstract partial class ApiErrorFilter(ILogger logger) : IEndpointFilter
{
    protected abstract void WriteError(Utf8JsonWriter w, OpenAiException error);

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        try
        {
            return await next(context);
        }
        catch (Exception e) when (!http.Response.HasStarted && e is not OperationCanceledException)
        {
            var error = e switch
            {
                OpenAiException o => o,
                BadHttpRequestException b => new OpenAiException(b.StatusCode, b.Message),
                // A slot frees as soon as any generation ends; a placement takes a few seconds to load or re-plan.
                BackendSaturatedException s => new OpenAiException(429, $"the cluster is at capacity: {s.Message}; retry shortly", null, "rate_limit_exceeded", "rate_limit_error") { RetryAfterSeconds = 1 },
                AdmissionRejectedException a => new OpenAiException(429, a.Message, null, "rate_limit_exceeded", "rate_limit_error") { RetryAfterSeconds = 1 },
                BackendUnavailableException u => new OpenAiException(503, u.Message, null, "model_not_ready", "server_error") { RetryAfterSeconds = 5 },
                BackendFailedException f => new OpenAiException(502, f.Message, null, "generation_failed", "server_error"),
                _ => null,
            };
            if (error is null)
            {
                LogUnexpected(e, http.Request.Path);
                error = new OpenAiException(500, "the server failed while handling the request; see the API log", null, "internal_error", "server_error");
            }

            if (error.RetryAfterSeconds is { } seconds) http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            await Apis.EndpointIo.WriteJson(http, error.Status, w => WriteError(w, error));
            return Results.Empty;
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Unexpected failure of a request to {Path}")]
    private partial void LogUnexpected(Exception exception, PathString path);
}
