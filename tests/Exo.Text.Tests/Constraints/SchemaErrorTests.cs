using Exo.Text.Constraints;
using static Exo.Text.Tests.Constraints.GrammarText;

namespace Exo.Text.Tests.Constraints;

/// <summary>Schemas the grammar cannot honour fail at compile time, naming where.</summary>
public sealed class SchemaErrorTests
{
    [Theory]
    [InlineData("""{"type": "strin"}""", "#/type", "unknown type")]
    [InlineData("""{"type": "object", "properties": {"a": {"type": "string", "pattern": "^a"}}}""", "#/properties/a/pattern", "not supported")]
    [InlineData("""{"type": "object", "properties": {"n": {"type": "number", "minimum": 0}}}""", "#/properties/n/minimum", "not supported")]
    [InlineData("""{"type": "integer", "multipleOf": 2}""", "#/multipleOf", "not supported")]
    [InlineData("""{"type": "integer", "minimum": 3, "exclusiveMaximum": 3}""", "#", "no integer")]
    [InlineData("""{"type": "integer", "exclusiveMinimum": true}""", "#/exclusiveMinimum", "must be a number")]
    [InlineData("""{"type": "object", "required": ["x"], "additionalProperties": false}""", "#/required", "'x' is required")]
    [InlineData("""{"$ref": "#/$defs/missing"}""", "#/$ref", "points at nothing")]
    [InlineData("""{"$ref": "https://example.com/s.json"}""", "#/$ref", "inside the schema")]
    [InlineData("""{"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}""", "#/$defs/a", "refers to itself")]
    [InlineData("""{"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "null"}]}}, "$ref": "#/$defs/a"}""", "#/$defs/a", "refers to itself")]
    [InlineData("""{"$defs": {"n": {"type": "object", "properties": {"n": {"$ref": "#/$defs/n"}}, "required": ["n"]}}, "$ref": "#/$defs/n"}""", "#", "no finite")]
    [InlineData("""{"oneOf": [{"type": "integer"}, {"type": "number"}]}""", "#/oneOf", "branches 0 and 1")]
    [InlineData("""{"allOf": [{"type": "integer"}, {"type": "number"}]}""", "#/allOf", "exactly one")]
    [InlineData("""{"type": "string", "minLength": 3, "maxLength": 2}""", "#", "exceeds")]
    [InlineData("""{"type": "array", "maxItems": -1}""", "#/maxItems", "non-negative")]
    [InlineData("""{"type": "array", "uniqueItems": true}""", "#/uniqueItems", "not supported")]
    [InlineData("""{"type": "object", "properties": {"a": 3}}""", "#/properties/a", "must be an object or a boolean")]
    [InlineData("""{"not": {"type": "null"}}""", "#/not", "not supported")]
    [InlineData("""{"$ref": "#/$defs/a", "type": "object", "$defs": {"a": true}}""", "#", "beside '$ref'")]
    [InlineData("""{"enum": []}""", "#", "no value")]
    [InlineData("""{"type": "string", "maxLength": 100000}""", "#/maxLength", "above")]
    public void ReportsThePointerAndTheProblem(string schema, string pointer, string problem)
    {
        var error = Assert.Throws<GrammarException>(() => Schema(schema));
        Assert.Contains($"'{pointer}'", error.Message, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DeepNestingIsRefused()
    {
        var schema = string.Concat(Enumerable.Repeat("""{"type": "array", "items": """, 70)) + "true" + new string('}', 70);
        var error = Assert.Throws<GrammarException>(() => OutputGrammar.Json(System.Text.Json.JsonDocument.Parse(schema, new System.Text.Json.JsonDocumentOptions { MaxDepth = 200 }).RootElement));
        Assert.Contains("nested more than", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HugeSchemasAreRefused()
    {
        var properties = string.Join(",", Enumerable.Range(0, 200).Select(i => $"\"p{i}\": {{\"type\": \"string\", \"maxLength\": 10000}}"));
        var schema = $"{{\"type\": \"object\", \"properties\": {{{properties}}}}}";
        var error = Assert.Throws<GrammarException>(() => Schema(schema));
        Assert.Contains("grammar", error.Message, StringComparison.Ordinal);
    }
}
