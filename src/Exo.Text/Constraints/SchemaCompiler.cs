using System.Text.Json;

namespace Exo.Text.Constraints;

/// <summary>
/// Compiles a JSON schema into a grammar whose every sentence is JSON that validates against it.
/// Supported: <c>type</c> (one or a list), <c>properties</c> (written in declared order; required ones always,
/// optional ones may be left out), <c>required</c>, <c>additionalProperties</c> (false or absent: only declared
/// properties are written, a stricter reading than JSON Schema's for absent; true or a schema: more properties may
/// follow, with ASCII keys that name no declared property), <c>items</c>, <c>prefixItems</c>,
/// <c>minItems</c>/<c>maxItems</c>, <c>enum</c>, <c>const</c>, <c>$ref</c> to any pointer inside the schema (so
/// "#/$defs/X" and "#/definitions/X", recursion included), <c>anyOf</c>, <c>oneOf</c> (when its branches cannot
/// overlap), <c>allOf</c> of one schema, <c>minLength</c>/<c>maxLength</c>, integer <c>minimum</c>/<c>maximum</c>/<c>exclusiveMinimum</c>/<c>exclusiveMaximum</c>. Annotations (description, title,
/// default, examples, format, $schema, strict, ...) and unknown keywords are ignored. Validation keywords the grammar
/// cannot enforce (pattern, bounds on non-integer numbers, multipleOf, not, uniqueItems, ...) are refused with a <see cref="GrammarException"/> rather
/// than ignored, as are schemas that are malformed, unsatisfiable, nested too deeply or too large.
/// </summary>
internal sealed partial class SchemaCompiler
{
    private const int MaxDepth = 64;
    /// <summary>The largest count (length, items) a chain of rules spells out.</summary>
    private const int MaxCount = 10_000;

    private static readonly string[] Everywhere = ["not", "if", "then", "else", "dependentSchemas", "dependencies", "$dynamicRef", "$recursiveRef"];
    /// <summary>Keywords that only describe or organise a schema: they sit beside $ref and the combinators freely.</summary>
    private static readonly HashSet<string> Annotations =
    [
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "$anchor", "$defs", "definitions",
        "strict", "format", "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType", "$vocabulary",
    ];

    private readonly GrammarBuilder _g = new();
    private readonly JsonLexicon _json;
    private readonly JsonElement _root;
    private readonly Dictionary<string, int> _references = [];
    private int _depth;

    private SchemaCompiler(JsonElement root)
    {
        _json = new JsonLexicon(_g);
        _root = root;
    }

    public static Grammar Compile(JsonElement? schema, string prefix, string suffix)
    {
        var compiler = new SchemaCompiler(schema ?? default);
        var g = compiler._g;
        var value = schema is { } root ? compiler.Schema(root, "#") : compiler._json.Object;
        return g.Build(g.Rule("#", g.Seq().Text(prefix).Ref(value).Text(suffix)));
    }

    private int Schema(JsonElement schema, string pointer)
    {
        if (++_depth > MaxDepth) throw GrammarException.At(pointer, $"schemas are nested more than {MaxDepth} deep");
        try
        {
            return schema.ValueKind switch
            {
                JsonValueKind.True => _json.Value,
                JsonValueKind.False => throw GrammarException.At(pointer, "the schema 'false' admits no value here"),
                JsonValueKind.Object => ObjectSchema(schema, pointer),
                _ => throw GrammarException.At(pointer, $"a schema must be an object or a boolean, not {schema.ValueKind}"),
            };
        }
        finally
        {
            _depth--;
        }
    }

    private int ObjectSchema(JsonElement schema, string pointer)
    {
        Refuse(schema, pointer, Everywhere);
        if (schema.TryGetProperty("$ref", out var reference))
        {
            Alone(schema, pointer, "$ref");
            return Reference(reference, Child(pointer, "$ref"));
        }
        if (schema.TryGetProperty("allOf", out var all))
        {
            Alone(schema, pointer, "allOf");
            if (all.ValueKind != JsonValueKind.Array || all.GetArrayLength() != 1)
                throw GrammarException.At(Child(pointer, "allOf"), "only an allOf of exactly one schema is supported");
            return Schema(all[0], Child(Child(pointer, "allOf"), "0"));
        }
        if (schema.TryGetProperty("anyOf", out var any))
        {
            Alone(schema, pointer, "anyOf");
            return Branches(any, Child(pointer, "anyOf"), exclusive: false);
        }
        if (schema.TryGetProperty("oneOf", out var one))
        {
            Alone(schema, pointer, "oneOf");
            return Branches(one, Child(pointer, "oneOf"), exclusive: true);
        }
        if (schema.TryGetProperty("const", out _) || schema.TryGetProperty("enum", out _)) return Values(schema, pointer);
        var types = Types(schema, pointer);
        if (types is null) return _json.Value;
        var rule = _g.Rule(pointer);
        foreach (var type in types) _g.Add(rule, _g.Seq().Ref(TypeRule(type, schema, pointer)));
        return rule;
    }

    private int TypeRule(string type, JsonElement schema, string pointer) => type switch
    {
        "object" => ObjectType(schema, pointer),
        "array" => ArrayType(schema, pointer),
        "string" => StringType(schema, pointer),
        "number" => NumberType(schema, pointer),
        "integer" => IntegerType(schema, pointer),
        "boolean" => _json.Boolean,
        _ => _json.Null,
    };

    /// <summary>The types to write: the "type" keyword's, or the one the keywords present imply; null for any value.</summary>
    private static List<string>? Types(JsonElement schema, string pointer)
    {
        if (!schema.TryGetProperty("type", out var type))
        {
            if (Has(schema, "properties", "required", "additionalProperties")) return ["object"];
            if (Has(schema, "items", "prefixItems", "minItems", "maxItems")) return ["array"];
            if (Has(schema, "minLength", "maxLength", "pattern")) return ["string"];
            return null;
        }
        var at = Child(pointer, "type");
        List<string> types = type.ValueKind switch
        {
            JsonValueKind.String => [type.GetString()!],
            JsonValueKind.Array => [.. type.EnumerateArray().Select(t => t.ValueKind == JsonValueKind.String ? t.GetString()! : throw GrammarException.At(at, "every type must be a string"))],
            _ => throw GrammarException.At(at, "'type' must be a string or a list of strings"),
        };
        foreach (var t in types)
        {
            if (t is not ("object" or "array" or "string" or "number" or "integer" or "boolean" or "null")) throw GrammarException.At(at, $"unknown type '{t}'");
        }
        if (types.Count == 0) throw GrammarException.At(at, "an empty list of types admits no value");
        if (types.Contains("number")) types.Remove("integer");
        return [.. types.Distinct()];
    }

    private int Reference(JsonElement reference, string pointer)
    {
        if (reference.ValueKind != JsonValueKind.String) throw GrammarException.At(pointer, "'$ref' must be a string");
        var target = reference.GetString()!;
        if (_references.TryGetValue(target, out var known)) return known;
        var schema = Resolve(target, pointer);
        // The rule exists before its body is compiled, so a schema may refer to itself.
        var rule = _g.Rule(target);
        _references.Add(target, rule);
        _g.Add(rule, _g.Seq().Ref(Schema(schema, target)));
        return rule;
    }

    private JsonElement Resolve(string reference, string pointer)
    {
        if (!reference.StartsWith('#')) throw GrammarException.At(pointer, $"only references inside the schema (starting with '#') are supported, not '{reference}'");
        var path = Uri.UnescapeDataString(reference[1..]);
        if (path.Length > 0 && path[0] != '/') throw GrammarException.At(pointer, $"'{reference}' is not a JSON pointer (anchors are not supported)");
        var node = _root;
        foreach (var raw in path.Length == 0 ? [] : path[1..].Split('/'))
        {
            var token = raw.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            if (node.ValueKind == JsonValueKind.Object && node.TryGetProperty(token, out var child)) node = child;
            else if (node.ValueKind == JsonValueKind.Array && int.TryParse(token, out var index) && index >= 0 && index < node.GetArrayLength()) node = node[index];
            else throw GrammarException.At(pointer, $"'{reference}' points at nothing");
        }
        return node;
    }

    private int Branches(JsonElement branches, string pointer, bool exclusive)
    {
        if (branches.ValueKind != JsonValueKind.Array || branches.GetArrayLength() == 0) throw GrammarException.At(pointer, "must be a non-empty list of schemas");
        if (exclusive) CheckExclusive(branches, pointer);
        var rule = _g.Rule(pointer);
        var i = 0;
        foreach (var branch in branches.EnumerateArray())
        {
            var at = Child(pointer, (i++).ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (branch.ValueKind != JsonValueKind.False) _g.Add(rule, _g.Seq().Ref(Schema(branch, at)));
        }
        return rule;
    }

    /// <summary>enum or const: the values' own JSON text, keeping those of the schema's type when it has one.</summary>
    private int Values(JsonElement schema, string pointer)
    {
        var unsupported = schema.EnumerateObject().Select(p => p.Name)
            .FirstOrDefault(k => k is not ("const" or "enum" or "type") && !Annotations.Contains(k) && IsValidationKeyword(k));
        if (unsupported is not null) throw GrammarException.At(pointer, $"'{unsupported}' beside enum or const is not supported");
        List<JsonElement> values;
        if (schema.TryGetProperty("const", out var constant))
        {
            values = [constant];
        }
        else
        {
            var list = schema.GetProperty("enum");
            if (list.ValueKind != JsonValueKind.Array) throw GrammarException.At(Child(pointer, "enum"), "'enum' must be a list");
            values = [.. list.EnumerateArray()];
        }
        var types = Types(schema, pointer);
        var texts = values.Where(v => types is null || types.Any(t => HasType(v, t)))
            .Select(v => JsonLexicon.Canonical(v.WriteTo)).DistinctBy(Convert.ToBase64String).ToList();
        if (texts.Count == 0) throw GrammarException.At(pointer, "no value of enum or const has the schema's type");
        var rule = _g.Rule(pointer);
        foreach (var text in texts) _g.Add(rule, _g.Seq().Utf8(text));
        return rule;
    }

    private static bool HasType(JsonElement value, string type) => type switch
    {
        "object" => value.ValueKind == JsonValueKind.Object,
        "array" => value.ValueKind == JsonValueKind.Array,
        "string" => value.ValueKind == JsonValueKind.String,
        "number" => value.ValueKind == JsonValueKind.Number,
        "integer" => value.ValueKind == JsonValueKind.Number && value.TryGetDecimal(out var d) && d == decimal.Truncate(d),
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        _ => value.ValueKind == JsonValueKind.Null,
    };

    /// <summary>$ref and the combinators stand alone: beside them only annotations (and unknown keywords).</summary>
    private static void Alone(JsonElement schema, string pointer, string keyword)
    {
        foreach (var property in schema.EnumerateObject())
        {
            if (property.Name != keyword && IsValidationKeyword(property.Name))
                throw GrammarException.At(pointer, $"'{property.Name}' beside '{keyword}' is not supported");
        }
    }

    private static bool IsValidationKeyword(string keyword) => !Annotations.Contains(keyword) && KnownKeywords.Contains(keyword);

    private static readonly HashSet<string> KnownKeywords =
    [
        "type", "enum", "const", "$ref", "allOf", "anyOf", "oneOf", "not", "if", "then", "else",
        "properties", "required", "additionalProperties", "unevaluatedProperties", "patternProperties", "propertyNames",
        "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "dependencies",
        "items", "prefixItems", "additionalItems", "unevaluatedItems", "minItems", "maxItems", "uniqueItems", "contains", "minContains", "maxContains",
        "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
        "$dynamicRef", "$recursiveRef",
    ];

    private static void Refuse(JsonElement schema, string pointer, params ReadOnlySpan<string> keywords)
    {
        foreach (var keyword in keywords)
        {
            if (schema.TryGetProperty(keyword, out _)) throw GrammarException.At(Child(pointer, keyword), $"'{keyword}' is not supported");
        }
    }

    private static bool Has(JsonElement schema, params ReadOnlySpan<string> keywords)
    {
        foreach (var keyword in keywords)
        {
            if (schema.TryGetProperty(keyword, out _)) return true;
        }
        return false;
    }

    /// <summary>A non-negative count keyword (minLength, maxItems, ...), or null when absent.</summary>
    private static int? Count(JsonElement schema, string pointer, string keyword)
    {
        if (!schema.TryGetProperty(keyword, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDecimal(out var count) || count < 0 || count != decimal.Truncate(count))
            throw GrammarException.At(Child(pointer, keyword), $"'{keyword}' must be a non-negative integer");
        if (count > MaxCount) throw GrammarException.At(Child(pointer, keyword), $"'{keyword}' above {MaxCount} is not supported");
        return (int)count;
    }

    /// <summary>The lower and upper count of a pair of keywords, checked to be in order.</summary>
    private static (int Min, int? Max) Range(JsonElement schema, string pointer, string minKeyword, string maxKeyword)
    {
        var min = Count(schema, pointer, minKeyword) ?? 0;
        var max = Count(schema, pointer, maxKeyword);
        if (min > max) throw GrammarException.At(pointer, $"'{minKeyword}' {min} exceeds '{maxKeyword}' {max}");
        return (min, max);
    }

    private static string Child(string pointer, string name) =>
        pointer + "/" + name.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);
}
