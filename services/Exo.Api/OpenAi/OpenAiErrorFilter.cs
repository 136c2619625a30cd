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
                BackendSaturatedException s => new OpenAiException(429, $"the cluster is at capacity: {s.Message}; retry shortly", null, "rate_limit_exceeded", "rate_limit_error"),
                AdmissionRejectedException a => new OpenAiException(429, a.Message, null, "rate_limit_exceeded", "rate_limit_error"),
                BackendUnavailableException u => new OpenAiException(503, u.Message, null, "model_not_ready", "server_error"),
                BackendFailedException f => new OpenAiException(502, f.Message, null, "generation_failed", "server_error"),
                _ => null,
            };
            if (error is null)
            {
                LogUnexpected(e);
                error = new OpenAiException(500, "the server failed while handling the request; see the API log", null, "internal_error", "server_error");
            }

            await Apis.OpenAiApi.WriteJson(http, error.Status, w => OpenAiJson.Error(w, error));
            return Results.Empty;
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Unexpected failure of an OpenAI request")]
    private partial void LogUnexpected(Exception exception);
}
