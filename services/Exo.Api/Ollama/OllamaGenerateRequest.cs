using System.Text.Json;
using Exo.Api.Models;
using Exo.Api.OpenAi;

namespace Exo.Api.Ollama;

/// <summary>
/// A validated POST /api/generate body: the common fields, the prompt (empty asks only to load the model), the system
/// message that goes before it, raw (the prompt goes to the model as it is, untemplated, and system is ignored), and
/// context, the token ids a previous answer returned, which go before the prompt. Images and suffix (fill in the
/// middle) are refused.
/// </summary>
internal sealed record OllamaGenerateRequest(OllamaRequest Common, string Prompt, string? System, bool Raw, int[] Context)
{
    public static OllamaGenerateRequest Parse(JsonElement body, ModelCatalog catalog)
    {
        var r = new RequestReader(body);
        var prompt = r.String("prompt") ?? "";
        var system = r.String("system");
        var raw = r.Bool("raw") ?? false;
        var suffix = r.String("suffix");
        var context = ContextIds(r.Field("context"));
        var common = OllamaRequest.Read(r, catalog);

        OllamaErrors.RefuseList(r.Field("images"), "images", OllamaErrors.NoImages);
        if (!string.IsNullOrEmpty(suffix))
            throw OpenAiException.BadRequest($"'suffix': model '{common.Name}' does not support insert (fill in the middle)", "suffix", "unsupported_value");
        if (context.FirstOrDefault(id => id >= common.Model.Config.VocabSize, -1) is var outside and >= 0)
            throw OpenAiException.BadRequest($"'context' holds the token id {outside}, but the model's vocabulary has {common.Model.Config.VocabSize}", "context", "invalid_value");
        return new OllamaGenerateRequest(common, prompt, system, raw, context);
    }

    private static int[] ContextIds(JsonElement? context) => context switch
    {
        null => [],
        { ValueKind: JsonValueKind.Array } ids => ids.EnumerateArray()
            .Select(id => id.ValueKind == JsonValueKind.Number && id.TryGetInt32(out var value) && value >= 0 ? value
                : throw OpenAiException.BadRequest("'context' must hold non-negative token ids", "context", "invalid_value"))
            .ToArray(),
        _ => throw OpenAiException.BadRequest("'context' must be an array of token ids", "context", "invalid_type"),
    };
}
