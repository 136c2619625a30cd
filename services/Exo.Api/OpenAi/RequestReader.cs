using System.Text.Json;

namespace Exo.Api.OpenAi;

/// <summary>Typed, validating access to a request body's fields; every mistake is a 400 naming the parameter.</summary>
internal readonly struct RequestReader(JsonElement body)
{
    public JsonElement Body => body;

    public JsonElement? Field(string name) =>
        body.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public string RequiredString(string name) =>
        String(name) ?? throw OpenAiException.BadRequest($"you must provide '{name}'", name, "missing_required_parameter");

    public string? String(string name) => Field(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => v.GetString(),
        _ => throw OpenAiException.BadRequest($"'{name}' must be a string", name, "invalid_type"),
    };

    public bool? Bool(string name) => Field(name) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        _ => throw OpenAiException.BadRequest($"'{name}' must be a boolean", name, "invalid_type"),
    };

    public double? Number(string name, double min, double max)
    {
        if (Field(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d)) throw OpenAiException.BadRequest($"'{name}' must be a number", name, "invalid_type");
        return d >= min && d <= max ? d : throw OpenAiException.BadRequest($"'{name}' is {d}; it must be between {min} and {max}", name, "invalid_value");
    }

    public long? Integer(string name, long min, long max)
    {
        if (Field(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var n)) throw OpenAiException.BadRequest($"'{name}' must be an integer", name, "invalid_type");
        return n >= min && n <= max ? n : throw OpenAiException.BadRequest($"'{name}' is {n}; it must be between {min} and {max}", name, "invalid_value");
    }

    /// <summary>A string or a list of up to <paramref name="most"/> non-empty strings.</summary>
    public IReadOnlyList<string> Strings(string name, int most)
    {
        switch (Field(name))
        {
            case null:
                return [];
            case { ValueKind: JsonValueKind.String } v:
                return v.GetString() is { Length: > 0 } single ? [single] : [];
            case { ValueKind: JsonValueKind.Array } array:
                var list = new List<string>();
                foreach (var item in array.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String || item.GetString() is not { Length: > 0 } s)
                        throw OpenAiException.BadRequest($"'{name}' must hold non-empty strings", name, "invalid_type");
                    list.Add(s);
                }

                return list.Count <= most ? list : throw OpenAiException.BadRequest($"'{name}' may hold at most {most} strings", name, "invalid_value");
            default:
                throw OpenAiException.BadRequest($"'{name}' must be a string or a list of strings", name, "invalid_type");
        }
    }
}
