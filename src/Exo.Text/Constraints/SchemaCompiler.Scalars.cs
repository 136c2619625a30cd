using System.Text.Json;

namespace Exo.Text.Constraints;

internal sealed partial class SchemaCompiler
{
    private int StringType(JsonElement schema, string pointer)
    {
        Refuse(schema, pointer, "pattern");
        var (min, max) = Range(schema, pointer, "minLength", "maxLength");
        return min == 0 && max is null ? _json.String : _json.StringOf(min, max, pointer);
    }

    /// <summary>Numbers without bounds: the grammar cannot keep a decimal within a range or a multiple.</summary>
    private int NumberType(JsonElement schema, string pointer)
    {
        Refuse(schema, pointer, "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf");
        return _json.Number;
    }

    /// <summary>Integers, within minimum/maximum (inclusive or exclusive) when the schema gives them.</summary>
    private int IntegerType(JsonElement schema, string pointer)
    {
        Refuse(schema, pointer, "multipleOf");
        if (!Has(schema, "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")) return _json.Integer;
        var min = -IntegerRanges.Largest;
        var max = IntegerRanges.Largest;
        if (Bound(schema, pointer, "minimum") is { } minimum) min = Math.Max(min, Clamp(Math.Ceiling(minimum)));
        if (Bound(schema, pointer, "exclusiveMinimum") is { } above) min = Math.Max(min, Clamp(Math.Floor(above) + 1));
        if (Bound(schema, pointer, "maximum") is { } maximum) max = Math.Min(max, Clamp(Math.Floor(maximum)));
        if (Bound(schema, pointer, "exclusiveMaximum") is { } below) max = Math.Min(max, Clamp(Math.Ceiling(below) - 1));
        if (min > max) throw GrammarException.At(pointer, $"no integer of at most {JsonLexicon.MaxIntegerDigits} digits lies within the bounds");
        return IntegerRanges.Rule(_g, min, max, pointer);
    }

    private static decimal? Bound(JsonElement schema, string pointer, string keyword)
    {
        if (!schema.TryGetProperty(keyword, out var value)) return null;
        return value.ValueKind == JsonValueKind.Number && value.TryGetDecimal(out var bound) ? bound
            : throw GrammarException.At(Child(pointer, keyword), $"'{keyword}' must be a number");
    }

    private static long Clamp(decimal value) => (long)Math.Clamp(value, -IntegerRanges.Largest - 1, IntegerRanges.Largest + 1);
}
