using System.Text.Json;
using Exo.Api.OpenAi;

namespace Exo.Api.Ollama;

/// <summary>The 400s the Ollama requests share: a nested field's error named by its path, and lists refused unless empty.</summary>
internal static class OllamaErrors
{
    /// <summary>An error about a field of the object at <paramref name="path"/>, named from the body's root: options.top_p.</summary>
    public static OpenAiException Within(OpenAiException e, string path)
    {
        if (e.Param is not { } name) return e;
        var param = $"{path}.{name}";
        return new OpenAiException(e.Status, e.Message.Replace($"'{name}'", $"'{param}'", StringComparison.Ordinal), param, e.Code);
    }

    /// <summary>Absent, null or an empty list passes; a list with items is refused (<paramref name="refusal"/>), anything else is the wrong type.</summary>
    public static void RefuseList(JsonElement? value, string name, string refusal)
    {
        switch (value)
        {
            case null:
            case { ValueKind: JsonValueKind.Array } empty when empty.GetArrayLength() == 0:
                return;
            case { ValueKind: JsonValueKind.Array }:
                throw OpenAiException.BadRequest(refusal, name, "unsupported_value");
            default:
                throw OpenAiException.BadRequest($"'{name}' must be an array", name, "invalid_type");
        }
    }

    public const string NoImages = "images are not supported: the models served here read no images";
}
