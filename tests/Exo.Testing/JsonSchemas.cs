using System.Collections.Concurrent;
using System.Text.Json;
using Json.Schema;

namespace Exo.Testing;

/// <summary>Schemas that structured-output tests generate against, and a real JSON-schema validator to check the results.</summary>
public static class JsonSchemas
{
    /// <summary>One schema of each kind the grammar supports: nested objects, arrays, enums, $ref, anyOf, oneOf, recursion.</summary>
    public static IReadOnlyList<(string Name, string Schema)> Acceptance { get; } =
    [
        ("person", """
            {"type": "object", "properties": {
              "name": {"type": "string", "minLength": 1, "maxLength": 20},
              "age": {"type": "integer", "minimum": 0, "maximum": 150},
              "email": {"type": ["string", "null"]},
              "active": {"type": "boolean", "description": "whether the account is live"}},
             "required": ["name", "age", "active"], "additionalProperties": false}
            """),
        ("nested", """
            {"type": "object", "properties": {
              "user": {"type": "object", "properties": {"id": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 3}}, "required": ["id", "tags"]},
              "score": {"type": "number"}},
             "required": ["user", "score"]}
            """),
        ("enums", """
            {"type": "object", "properties": {
              "color": {"enum": ["red", "green", "blue"]},
              "size": {"type": "integer", "enum": [1, 2, 3]},
              "mode": {"const": "fixed"},
              "flag": {"enum": [true, null, "maybe"]}},
             "required": ["color", "size", "mode"]}
            """),
        ("points", """
            {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}, "required": ["x", "y"]}, "minItems": 1, "maxItems": 3}
            """),
        ("refs", """
            {"definitions": {"point": {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}, "required": ["x", "y"], "additionalProperties": false}},
             "$defs": {"label": {"type": "string", "maxLength": 10}},
             "type": "object", "properties": {"from": {"$ref": "#/definitions/point"}, "to": {"$ref": "#/definitions/point"}, "name": {"$ref": "#/$defs/label"}},
             "required": ["from", "to"]}
            """),
        ("any-of", """
            {"type": "object", "properties": {"value": {"anyOf": [{"type": "string", "maxLength": 12}, {"type": "integer"}, {"type": "null"}]}, "note": {"allOf": [{"$ref": "#/$defs/note"}], "title": "note"}},
             "required": ["value"], "$defs": {"note": {"type": "string", "maxLength": 8}}}
            """),
        ("tree", """
            {"$defs": {"node": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}}, "required": ["name"]}},
             "$ref": "#/$defs/node"}
            """),
        ("one-of", """
            {"oneOf": [
              {"type": "object", "properties": {"kind": {"const": "circle"}, "radius": {"type": "number"}}, "required": ["kind", "radius"], "additionalProperties": false},
              {"type": "object", "properties": {"kind": {"const": "square"}, "side": {"type": "number"}}, "required": ["kind", "side"], "additionalProperties": false},
              {"type": "string", "enum": ["none"]}]}
            """),
        ("tuple", """
            {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "array", "prefixItems": [{"type": "string", "maxLength": 5}, {"type": "integer"}, {"type": "boolean"}], "items": false, "minItems": 2}
            """),
        ("open-object", """
            {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"], "additionalProperties": {"type": "string", "maxLength": 5}}
            """),
        ("any-object", "null"),
    ];

    private static readonly ConcurrentDictionary<string, JsonSchema> Parsed = new();

    /// <summary>Draft 2020-12 rules (format is an annotation, unknown keywords are ignored). Null when <paramref name="text"/> is JSON that validates against <paramref name="schema"/> ("null": any object); otherwise what is wrong.</summary>
    public static string? Validate(string schema, string text)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            return $"not JSON: {e.Message}";
        }
        using (document)
        {
            if (schema == "null") return document.RootElement.ValueKind == JsonValueKind.Object ? null : "not an object";
            var parsed = Parsed.GetOrAdd(schema, s => JsonSchema.FromText(s, new BuildOptions { Dialect = Dialect.Draft202012, SchemaRegistry = new SchemaRegistry() }));
            var result = parsed.Evaluate(document.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
            return result.IsValid ? null
                : string.Join("; ", (result.Details ?? []).Where(d => d.Errors is not null).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")));
        }
    }

    /// <summary>The schema as the grammar takes it: null for "null" (any object).</summary>
    public static JsonElement? Element(string schema) => schema == "null" ? null : JsonDocument.Parse(schema).RootElement.Clone();
}
