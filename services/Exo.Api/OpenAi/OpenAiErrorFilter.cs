using System.Text.Json;

namespace Exo.Api.OpenAi;

/// <summary>Answers every failure of the OpenAI endpoints with OpenAI's error object and the matching status.</summary>
internal sealed class OpenAiErrorFilter(ILogger<OpenAiErrorFilter> logger) : ApiErrorFilter(logger)
{
    protected override void WriteError(Utf8JsonWriter w, OpenAiException error) => OpenAiJson.Error(w, error);
}
