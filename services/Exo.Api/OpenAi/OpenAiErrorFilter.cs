using System.Globalization;
using Exo.Api.Backends;
using Exo.Api.Completions;

namespace Exo.Api.OpenAi;

/// <summary>Answers every failure of the OpenAI endpoints with OpenAI's error object and the matching status.</summary>
internal sealed partial class OpenAiErrorFilter(ILogger<OpenAiErrorFilter> logger) : IEndpointFilter
{
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
                LogUnexpected(e);
                error = new OpenAiException(500, "the server failed while handling the request; see the API log", null, "internal_error", "server_error");
            }

            if (error.RetryAfterSeconds is { } seconds) http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            await Apis.OpenAiApi.WriteJson(http, error.Status, w => OpenAiJson.Error(w, error));
            return Results.Empty;
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Unexpected failure of an OpenAI request")]
    private partial void LogUnexpected(Exception exception);
}
