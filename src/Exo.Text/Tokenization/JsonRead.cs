using System.Text.Json;

namespace Exo.Text.Tokenization;

/// <summary>Typed reads from tokenizer.json that fail with a message naming the field, never a bare JSON exception.</summary>
internal static class JsonRead
{
    public static JsonElement Property(JsonElement element, string name, string where)
    {
        if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out var value))
        {
            throw new TokenizerFormatException($"{where}: missing field '{name}'");
        }
        return value;
    }

    public static JsonElement? Optional(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
            ? value
            : null;

    public static string String(JsonElement element, string name, string where)
    {
        var value = Property(element, name, where);
        return value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new TokenizerFormatException($"{where}: field '{name}' must be a string");
    }

    public static bool Bool(JsonElement element, string name, bool fallback) =>
        Optional(element, name) is { } value
            ? value.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new TokenizerFormatException($"field '{name}' must be true or false"),
            }
            : fallback;

    public static int Int(JsonElement element, string name, string where)
    {
        var value = Property(element, name, where);
        return value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var result)
            ? result
            : throw new TokenizerFormatException($"{where}: field '{name}' must be an integer");
    }

    public static JsonElement.ArrayEnumerator Array(JsonElement element, string name, string where)
    {
        var value = Property(element, name, where);
        return value.ValueKind == JsonValueKind.Array
            ? value.EnumerateArray()
            : throw new TokenizerFormatException($"{where}: field '{name}' must be an array");
    }

    /// <summary>A <c>pattern</c> field of the form {"String": s}; regex patterns are rejected where only strings make sense.</summary>
    public static string StringPattern(JsonElement element, string where)
    {
        var pattern = Property(element, "pattern", where);
        if (Optional(pattern, "String") is { ValueKind: JsonValueKind.String } text)
        {
            return text.GetString()!;
        }
        throw new TokenizerFormatException($"{where}: only {{\"String\": ...}} patterns are supported");
    }

    public static char Char(JsonElement element, string name, string where)
    {
        var text = String(element, name, where);
        return text.Length == 1 ? text[0] : throw new TokenizerFormatException($"{where}: '{name}' must be one character");
    }

    /// <summary>Metaspace's prepend_scheme, or the older add_prefix_space flag it replaced.</summary>
    public static string PrependScheme(JsonElement element, string where)
    {
        var scheme = Optional(element, "prepend_scheme")?.GetString() ?? (Bool(element, "add_prefix_space", true) ? "always" : "never");
        return scheme is "always" or "first" or "never"
            ? scheme
            : throw new TokenizerFormatException($"{where}: unknown prepend_scheme '{scheme}'");
    }
}
