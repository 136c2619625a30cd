namespace Exo.Api.OpenAi;

/// <summary>An error the client caused or must handle, answered as OpenAI's error object with its HTTP status.</summary>
public sealed class OpenAiException(int status, string message, string? param = null, string? code = null, string type = "invalid_request_error")
    : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public string Type { get; } = type;

    /// <summary>When a retry may succeed, in seconds, for the Retry-After header of a 429 or 503 that will pass.</summary>
    public int? RetryAfterSeconds { get; init; }

    public static OpenAiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, param, code);
}
