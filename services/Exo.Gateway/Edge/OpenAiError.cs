namespace Exo.Gateway.Edge;

/// <summary>Refusals at the edge, answered with OpenAI's error object so that SDKs report them as the API's own.</summary>
internal static class OpenAiError
{
    public static Task WriteAsync(HttpContext context, int status, string message, string code, string type = "invalid_request_error")
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(new ErrorBody(new ErrorDetail(message, type, null, code)), context.RequestAborted);
    }

    private sealed record ErrorBody(ErrorDetail Error);

    private sealed record ErrorDetail(string Message, string Type, string? Param, string Code);
}
