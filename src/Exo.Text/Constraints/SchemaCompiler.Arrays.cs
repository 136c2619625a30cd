using System.Text.Json;

namespace Exo.Text.Constraints;

internal sealed partial class SchemaCompiler
{
    /// <summary>
    /// An array: prefixItems in order, then items, between minItems and maxItems of them. Rule T(i) writes the rest
    /// after i items; up to the last count that matters they are spelled out, beyond it one rule loops.
    /// </summary>
    private int ArrayType(JsonElement schema, string pointer)
    {
        Refuse(schema, pointer, "contains", "minContains", "maxContains", "unevaluatedItems", "additionalItems");
        if (schema.TryGetProperty("uniqueItems", out var unique) && unique.ValueKind == JsonValueKind.True)
            throw GrammarException.At(Child(pointer, "uniqueItems"), "'uniqueItems' is not supported");
        var prefix = new List<int?>();
        if (schema.TryGetProperty("prefixItems", out var prefixItems))
        {
            if (prefixItems.ValueKind != JsonValueKind.Array) throw GrammarException.At(Child(pointer, "prefixItems"), "'prefixItems' must be a list of schemas");
            var i = 0;
            foreach (var item in prefixItems.EnumerateArray())
            {
                var at = Child(Child(pointer, "prefixItems"), (i++).ToString(System.Globalization.CultureInfo.InvariantCulture));
                prefix.Add(item.ValueKind == JsonValueKind.False ? null : Schema(item, at));
            }
        }
        int? rest = _json.Value;
        if (schema.TryGetProperty("items", out var items))
        {
            if (items.ValueKind == JsonValueKind.Array) throw GrammarException.At(Child(pointer, "items"), "a list of 'items' is not supported: use 'prefixItems'");
            rest = items.ValueKind == JsonValueKind.False ? null : Schema(items, Child(pointer, "items"));
        }
        var (min, max) = Range(schema, pointer, "minItems", "maxItems");
        if (rest is null) max = Math.Min(max ?? prefix.Count, prefix.Count);
        if (min > max) throw GrammarException.At(pointer, $"'minItems' {min} is more items than the schema allows");
        var last = max ?? Math.Max(Math.Max(prefix.Count, min), 1);

        var ws = _json.Whitespace;
        var tail = _g.Rule(pointer, _g.Seq());
        if (max is null) _g.Add(tail, _g.Seq().Text(",").Ref(ws).Ref(rest!.Value).Ref(ws).Ref(tail));
        for (var i = last - 1; i >= 0; i--)
        {
            var item = i < prefix.Count ? prefix[i] : rest;
            var rule = _g.Rule(pointer);
            if (i >= min) _g.Add(rule, _g.Seq());
            if (item is { } itemRule)
            {
                var write = _g.Seq();
                if (i > 0) write.Text(",").Ref(ws);
                _g.Add(rule, write.Ref(itemRule).Ref(ws).Ref(tail));
            }
            else if (i < min)
            {
                throw GrammarException.At(pointer, $"item {i} must be written ('minItems' {min}) but its schema is false");
            }
            tail = rule;
        }
        return _g.Rule(pointer, _g.Seq().Text("[").Ref(ws).Ref(tail).Text("]"));
    }
}
