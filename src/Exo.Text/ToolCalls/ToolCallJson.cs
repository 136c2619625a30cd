using System.Text.Json;

namespace Exo.Text.ToolCalls;

/// <summary>Reads the JSON of one call as the model families write it: {"name": ..., "arguments" | "parameters": {...}}.</summary>
internal static class ToolCallJson
{
    private static readonly JsonDocumentOptions Options = new() { MaxDepth = 64 };

    /// <summary>The calls in <paramref name="json"/>: one object, or (where <paramref name="allowArray"/>) an array of them; null when it is not that.</summary>
    public static List<ToolCall>? TryRead(string json, bool allowArray)
    {
        try
        {
            using var document = JsonDocument.Parse(json, Options);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object) return TryCall(root) is { } call ? [call] : null;
            if (!allowArray || root.ValueKind != JsonValueKind.Array || root.GetArrayLength() == 0) return null;
            var calls = new List<ToolCall>();
            foreach (var item in root.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object || TryCall(item) is not { } call) return null;
                calls.Add(call);
            }

            return calls;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>A call from its object; arguments given as a JSON string (as OpenAI spells them) are taken as that JSON.</summary>
    public static ToolCall? TryCall(JsonElement call)
    {
        if (!call.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || name.GetString() is not { Length: > 0 } text) return null;
        if (!call.TryGetProperty("arguments", out var arguments) && !call.TryGetProperty("parameters", out arguments)) return new ToolCall(ToolCall.NewId(), text, "{}");
        return Arguments(arguments) is { } json ? new ToolCall(ToolCall.NewId(), text, json) : null;
    }

    /// <summary>Arguments as compact JSON text of an object; null when they are not an object.</summary>
    public static string? Arguments(JsonElement arguments)
    {
        if (arguments.ValueKind == JsonValueKind.String)
        {
            try
            {
                using var inner = JsonDocument.Parse(arguments.GetString()!, Options);
                return inner.RootElement.ValueKind == JsonValueKind.Object ? inner.RootElement.GetRawText() : null;
            }
            catch (JsonException)
            {
                return null;
            }
        }

        return arguments.ValueKind == JsonValueKind.Object ? JsonSerializer.Serialize(arguments) : null;
    }
}
