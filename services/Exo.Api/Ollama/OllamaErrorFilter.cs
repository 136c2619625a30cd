using System.Text.Json;
using Exo.Api.OpenAi;

namespace Exo.Api.Ollama;

/// <summary>Answers every failure of the Ollama endpoints with Ollama's error object, <c>{"error": "..."}</c>, and the matching status.</summary>
internal sealed class OllamaErrorFilter(ILogger<OllamaErrorFilter> logger) : ApiErrorFilter(logger)
{
    protected override void WriteError(Utf8JsonWriter w, OpenAiException error) => OllamaJson.Error(w, error.Message);
}
