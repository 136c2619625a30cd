using Exo.Text.Constraints;
using static Exo.Text.Tests.Constraints.GrammarText;

namespace Exo.Text.Tests.Constraints;

/// <summary>Exact acceptance and rejection of hand-written texts, one schema feature at a time.</summary>
public sealed class SchemaGrammarTests
{
    private static void Check(string schema, string[] accepted, string[] rejected)
    {
        var grammar = Schema(schema);
        foreach (var text in accepted) Assert.True(Matches(grammar, text), $"should accept {text}");
        foreach (var text in rejected) Assert.False(Matches(grammar, text), $"should reject {text}");
    }

    [Fact]
    public void NullSchemaIsAnyObject()
    {
        var grammar = OutputGrammar.Json(null);
        foreach (var text in (string[])["{}", "{\"a\":1}", "{ \"a\": [1, {\"b\": null}], \"c\": \"x\" }", "{\n  \"a\": true\n}"])
            Assert.True(Matches(grammar, text), text);
        foreach (var text in (string[])["[]", "1", "\"a\"", " {}", "{} ", "{\"a\":}", "{\"a\" 1}", "{a:1}", "{\"a\":1,}"])
            Assert.False(Matches(grammar, text), text);
    }

    [Fact]
    public void Strings() => Check("""{"type": "string", "format": "email", "description": "format is an annotation"}""",
        ["\"\"", "\"abc\"", "\"a\\\"b\"", "\"\\u00e9\\n\"", "\"héllo 日本 😀\""],
        ["abc", "\"abc", "\"a\nb\"", "\"\\x\"", "\"\\ud800\"", "\"\u0001\""]);

    [Fact]
    public void StringLengthsCountCharacters() => Check("""{"type": "string", "minLength": 2, "maxLength": 3}""",
        ["\"ab\"", "\"abc\"", "\"日本\"", "\"\\n\\t\""],
        ["\"a\"", "\"abcd\"", "\"日\""]);

    [Fact]
    public void NumbersAndIntegers()
    {
        Check("""{"type": "number"}""", ["0", "-1", "3.25", "1e5", "-0.5E-10", "1234567890123456"],
            ["01", "1.", ".5", "+1", "1e", "--1", "1e123", "12345678901234567"]);
        Check("""{"type": "integer"}""", ["0", "-42", "7"], ["1.0", "1e3", "-", "00"]);
    }

    [Theory]
    [InlineData("""{"type": "integer", "minimum": 0}""", 0, 9_999_999_999_999_999)]
    [InlineData("""{"type": "integer", "minimum": -12, "maximum": 7}""", -12, 7)]
    [InlineData("""{"type": "integer", "exclusiveMinimum": 5, "maximum": 100}""", 6, 100)]
    [InlineData("""{"type": "integer", "minimum": -250.5, "exclusiveMaximum": -3}""", -250, -4)]
    [InlineData("""{"type": "integer", "minimum": 19, "maximum": 2301}""", 19, 2301)]
    [InlineData("""{"type": "integer", "maximum": 0}""", -9_999_999_999_999_999, 0)]
    public void IntegerBounds(string schema, long min, long max)
    {
        var grammar = Schema(schema);
        for (var x = -3000L; x <= 3000; x++) Assert.True(Matches(grammar, x.ToString(System.Globalization.CultureInfo.InvariantCulture)) == (x >= min && x <= max), $"{x}");
        foreach (var x in (long[])[min, max, min - 1, max + 1, -9_999_999_999_999_999, 9_999_999_999_999_999])
            Assert.True(Matches(grammar, x.ToString(System.Globalization.CultureInfo.InvariantCulture)) == (x >= min && x <= max), $"{x}");
        Assert.False(Matches(grammar, "-0"));
        Assert.False(Matches(grammar, "007"));
    }

    [Fact]
    public void BooleansNullAndTypeLists() => Check("""{"type": ["boolean", "null"]}""", ["true", "false", "null"], ["True", "0", "\"true\""]);

    [Fact]
    public void ObjectsWriteDeclaredPropertiesInOrder() => Check(
        """{"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"}}, "required": ["b"]}""",
        ["{\"b\":\"x\"}", "{\"a\":1,\"b\":\"x\"}", "{\"b\":\"x\",\"c\":true}", "{ \"a\": 1, \"b\": \"x\", \"c\": false }", "{\n  \"b\": \"\"\n}"],
        ["{}", "{\"a\":1}", "{\"b\":\"x\",\"a\":1}", "{\"b\":\"x\",\"d\":1}", "{\"b\":\"x\",}", "{,\"b\":\"x\"}", "{\"b\":1}"]);

    [Fact]
    public void AdditionalPropertiesWithASchemaTakeOtherKeys() => Check(
        """{"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"], "additionalProperties": {"type": "string"}}""",
        ["{\"id\":1}", "{\"id\":1,\"x\":\"y\"}", "{\"id\":1,\"i\":\"\",\"idx\":\"z\"}"],
        ["{\"id\":1,\"id\":\"y\"}", "{\"id\":1,\"x\":2}", "{\"x\":\"y\"}"]);

    [Fact]
    public void Arrays()
    {
        Check("""{"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}""",
            ["[1]", "[1,2,3]", "[ 1 , 2 ]"], ["[]", "[1,2,3,4]", "[1,]", "[\"a\"]"]);
        Check("""{"type": "array", "items": {"type": "integer"}}""", ["[]", "[1,2,3,4,5,6,7,8,9,10]"], ["[1 2]"]);
        Check("""{"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false}""",
            ["[]", "[\"a\"]", "[\"a\",1]"], ["[1]", "[\"a\",1,2]"]);
        Check("""{"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "boolean"}, "minItems": 2}""",
            ["[\"a\",true]", "[\"a\",true,false]"], ["[\"a\"]", "[\"a\",1]"]);
    }

    [Fact]
    public void EnumsAndConsts()
    {
        Check("""{"enum": ["red", 1, null, {"a": [true]}]}""", ["\"red\"", "1", "null", "{\"a\":[true]}"], ["\"blue\"", "2", "{\"a\": [true]}"]);
        Check("""{"type": "string", "enum": ["a", 1]}""", ["\"a\""], ["1"]);
        Check("""{"const": "x"}""", ["\"x\""], ["\"y\""]);
    }

    [Fact]
    public void ReferencesAndRecursion()
    {
        Check("""{"$defs": {"n": {"type": "integer"}}, "definitions": {"s": {"type": "string"}}, "type": "array", "prefixItems": [{"$ref": "#/$defs/n"}, {"$ref": "#/definitions/s"}]}""",
            ["[1,\"a\"]"], ["[\"a\",1]"]);
        Check("""{"type": "object", "properties": {"next": {"$ref": "#"}, "v": {"type": "integer"}}, "required": ["v"]}""",
            ["{\"v\":1}", "{\"next\":{\"next\":{\"v\":3},\"v\":2},\"v\":1}"], ["{\"next\":{},\"v\":1}"]);
    }

    [Fact]
    public void AnyOfOneOfAllOf()
    {
        Check("""{"anyOf": [{"type": "integer"}, {"type": "object", "properties": {"a": {"type": "string"}}}]}""", ["1", "{}", "{\"a\":\"b\"}"], ["\"a\""]);
        Check("""{"oneOf": [{"type": "string"}, {"type": "null"}]}""", ["\"a\"", "null"], ["1"]);
        Check("""{"allOf": [{"type": "boolean"}], "description": "d"}""", ["true"], ["1"]);
    }

    [Fact]
    public void AmbiguousSchemasStayBounded()
    {
        // Two identical branches: without a bound the parse stacks would double at every '['.
        var grammar = Schema("""{"$defs": {"n": {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/n"}}, {"type": "array", "items": {"$ref": "#/$defs/n"}}]}}, "$ref": "#/$defs/n"}""");
        Assert.True(Matches(grammar, new string('[', 40) + new string(']', 40)));
        Assert.False(Matches(grammar, new string('[', 40) + new string(']', 41)));
    }

    [Fact]
    public void WhitespaceIsBounded()
    {
        var grammar = OutputGrammar.Json(null);
        Assert.True(Matches(grammar, "{\n" + new string(' ', JsonLexicon.MaxIndent) + "\"a\": 1}"));
        Assert.False(Matches(grammar, "{\n" + new string(' ', JsonLexicon.MaxIndent + 1) + "\"a\": 1}"));
        Assert.False(Matches(grammar, "{  \"a\": 1}"));
        Assert.False(Matches(grammar, "{\n\n\"a\": 1}"));
    }

    [Fact]
    public void PrefixSuffixAndLiteral()
    {
        var grammar = OutputGrammar.Json(JsonSchemas.Element("""{"type": "integer"}"""), "<tool_call>", "</tool_call>");
        Assert.True(Matches(grammar, "<tool_call>12</tool_call>"));
        Assert.False(Matches(grammar, "12"));
        Assert.True(Matches(OutputGrammar.Literal("héllo"), "héllo"));
        Assert.False(Matches(OutputGrammar.Literal("héllo"), "hello"));
    }

    [Fact]
    public void CostsAreTheFewestBytesToFinish()
    {
        var grammar = Schema("""{"type": "object", "properties": {"ab": {"type": "string", "minLength": 2}}, "required": ["ab"]}""");
        Assert.Equal("{\"ab\":\"xx\"}".Length, CostAfter(grammar, ""));
        Assert.Equal("x\"}".Length, CostAfter(grammar, "{\"ab\":\"x"));
        Assert.Equal(0, CostAfter(grammar, "{\"ab\":\"xx\"}"));
    }
}
