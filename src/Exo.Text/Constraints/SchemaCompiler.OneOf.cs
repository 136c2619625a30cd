using System.Text.Json;

namespace Exo.Text.Constraints;

internal sealed partial class SchemaCompiler
{
    [Flags]
    private enum Kinds
    {
        None = 0,
        Object = 1,
        Array = 2,
        String = 4,
        Number = 8,
        Boolean = 16,
        Null = 32,
        Any = 63,
    }

    /// <summary>
    /// oneOf needs exactly one branch to match, but the grammar only ensures one does: so its branches must be
    /// provably apart, by the kinds of value they admit or, for objects, by a required property whose const or enum
    /// values differ, or that one branch requires and the other forbids.
    /// </summary>
    private void CheckExclusive(JsonElement branches, string pointer)
    {
        var list = branches.EnumerateArray().Select(b => Deref(b, pointer)).ToList();
        for (var i = 0; i < list.Count; i++)
        {
            for (var j = i + 1; j < list.Count; j++)
            {
                if ((KindsOf(list[i], pointer, 0) & KindsOf(list[j], pointer, 0)) == Kinds.None
                    || Discriminated(list[i], list[j], pointer) || Discriminated(list[j], list[i], pointer)) continue;
                throw GrammarException.At(pointer, $"branches {i} and {j} may match the same value, which oneOf forbids: use anyOf, or set them apart by type or by a required property with different const values");
            }
        }
    }

    /// <summary>The schema a $ref or a one-schema allOf stands for.</summary>
    private JsonElement Deref(JsonElement schema, string pointer)
    {
        for (var hops = 0; hops < MaxDepth && schema.ValueKind == JsonValueKind.Object; hops++)
        {
            if (schema.TryGetProperty("$ref", out var reference) && reference.ValueKind == JsonValueKind.String) schema = Resolve(reference.GetString()!, pointer);
            else if (schema.TryGetProperty("allOf", out var all) && all.ValueKind == JsonValueKind.Array && all.GetArrayLength() == 1) schema = all[0];
            else break;
        }
        return schema;
    }

    private Kinds KindsOf(JsonElement schema, string pointer, int depth)
    {
        schema = Deref(schema, pointer);
        if (schema.ValueKind == JsonValueKind.False) return Kinds.None;
        if (schema.ValueKind != JsonValueKind.Object || depth > MaxDepth) return Kinds.Any;
        foreach (var combinator in (ReadOnlySpan<string>)["anyOf", "oneOf"])
        {
            if (schema.TryGetProperty(combinator, out var branches) && branches.ValueKind == JsonValueKind.Array)
                return branches.EnumerateArray().Aggregate(Kinds.None, (kinds, b) => kinds | KindsOf(b, pointer, depth + 1));
        }
        if (schema.TryGetProperty("const", out var constant)) return KindOf(constant);
        if (schema.TryGetProperty("enum", out var values) && values.ValueKind == JsonValueKind.Array)
            return values.EnumerateArray().Aggregate(Kinds.None, (kinds, v) => kinds | KindOf(v));
        var types = Types(schema, pointer);
        return types is null ? Kinds.Any : types.Aggregate(Kinds.None, (kinds, t) => kinds | t switch
        {
            "object" => Kinds.Object,
            "array" => Kinds.Array,
            "string" => Kinds.String,
            "number" or "integer" => Kinds.Number,
            "boolean" => Kinds.Boolean,
            _ => Kinds.Null,
        });
    }

    private static Kinds KindOf(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => Kinds.Object,
        JsonValueKind.Array => Kinds.Array,
        JsonValueKind.String => Kinds.String,
        JsonValueKind.Number => Kinds.Number,
        JsonValueKind.True or JsonValueKind.False => Kinds.Boolean,
        _ => Kinds.Null,
    };

    /// <summary>Whether no object satisfies both: a property <paramref name="a"/> requires is one <paramref name="b"/> forbids or requires with other values.</summary>
    private bool Discriminated(JsonElement a, JsonElement b, string pointer)
    {
        if (a.ValueKind != JsonValueKind.Object || b.ValueKind != JsonValueKind.Object) return false;
        var requiredB = Required(b, pointer);
        var closedB = b.TryGetProperty("additionalProperties", out var extra) && extra.ValueKind == JsonValueKind.False;
        foreach (var name in Required(a, pointer))
        {
            var inB = b.TryGetProperty("properties", out var propertiesB) && propertiesB.ValueKind == JsonValueKind.Object && propertiesB.TryGetProperty(name, out _);
            if (closedB && !inB) return true;
            if (requiredB.Contains(name) && ConstantTexts(a, name, pointer) is { } textsA && ConstantTexts(b, name, pointer) is { } textsB && !textsA.Overlaps(textsB)) return true;
        }
        return false;
    }

    /// <summary>The JSON texts a property's const or enum allows, or null when it is not so pinned.</summary>
    private HashSet<string>? ConstantTexts(JsonElement schema, string name, string pointer)
    {
        if (!schema.TryGetProperty("properties", out var properties) || properties.ValueKind != JsonValueKind.Object || !properties.TryGetProperty(name, out var property)) return null;
        property = Deref(property, pointer);
        if (property.ValueKind != JsonValueKind.Object) return null;
        List<JsonElement> values = property.TryGetProperty("const", out var constant) ? [constant]
            : property.TryGetProperty("enum", out var list) && list.ValueKind == JsonValueKind.Array ? [.. list.EnumerateArray()]
            : [];
        // Texts compare like values only for strings, booleans and null: 1 and 1.0 are one number.
        if (values.Count == 0 || values.Any(v => v.ValueKind is JsonValueKind.Number or JsonValueKind.Object or JsonValueKind.Array)) return null;
        return [.. values.Select(v => Convert.ToBase64String(JsonLexicon.Canonical(v.WriteTo)))];
    }
}
