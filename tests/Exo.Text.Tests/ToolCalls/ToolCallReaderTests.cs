using System.Text.Json;
using Exo.Text.Templates;
using Exo.Text.ToolCalls;

namespace Exo.Text.Tests.ToolCalls;

/// <summary>Tool calls read out of what each family's model writes: from transformers' renderings of the real templates, and from text in each format.</summary>
public sealed class ToolCallReaderTests
{
    /// <summary>Every assistant turn with tool_calls that transformers rendered (../shared/realtok), cut out of the rendering and read back.</summary>
    [Theory]
    [InlineData("qwen2.5-instruct", "hermes", "<|im_start|>assistant\n", "<|im_end|>")]
    [InlineData("llama-3.2-instruct", "llama3", "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>")]
    public void TheCallsARealTemplateWritesAreReadBack(string family, string syntaxName, string turnStart, string turnEnd)
    {
        var folder = Path.Combine(RepositoryPaths.Shared, "realtok", family);
        var syntax = ToolCallSyntax.ForTemplate(ChatTemplate.DefaultSource(folder));
        Assert.Equal(syntaxName, syntax.Name);

        var refs = SharedData.ReadJson(Path.Combine(folder, "refs.json"));
        var checkedTurns = 0;
        foreach (var entry in refs.GetProperty("chat_cases").EnumerateArray())
        {
            if (!entry.TryGetProperty("text", out var rendered) || rendered.ValueKind != JsonValueKind.String) continue;
            var text = rendered.GetString()!;
            var turns = entry.GetProperty("messages").EnumerateArray().Where(m => m.GetProperty("role").GetString() == "assistant").ToList();
            var at = 0;
            foreach (var turn in turns)
            {
                at = text.IndexOf(turnStart, at, StringComparison.Ordinal) + turnStart.Length;
                Assert.True(at >= turnStart.Length, $"{entry.GetProperty("name")}: an assistant turn is missing from the rendering");
                // A final turn that continue_final_message leaves open runs to the end.
                var end = text.IndexOf(turnEnd, at, StringComparison.Ordinal);
                var output = text[at..(end < 0 ? text.Length : end)];
                if (!turn.TryGetProperty("tool_calls", out var expected)) continue;

                var (content, calls) = ReadAll(syntax, [output]);
                Assert.Equal(expected.GetArrayLength(), calls.Count);
                foreach (var (call, want) in calls.Zip(expected.EnumerateArray()))
                {
                    var function = want.GetProperty("function");
                    Assert.Equal(function.GetProperty("name").GetString(), call.Name);
                    var arguments = function.GetProperty("arguments");
                    if (arguments.ValueKind == JsonValueKind.String) arguments = JsonDocument.Parse(arguments.GetString()!).RootElement;
                    Assert.True(JsonElement.DeepEquals(arguments, JsonDocument.Parse(call.Arguments).RootElement), call.Arguments);
                    Assert.StartsWith("call_", call.Id);
                }

                var wantContent = turn.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
                Assert.Equal(string.IsNullOrEmpty(wantContent) ? "" : wantContent, content.Trim());
                checkedTurns++;
            }
        }

        Assert.True(checkedTurns > 0, $"{family}'s references hold no assistant turn with tool calls");
    }

    [Fact]
    public void HermesCallsAmidTextComeOutInOrderHoweverTheTextIsCut()
    {
        const string output = "Let me check.\n<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
            + "<tool_call>\n{\"name\": \"time\", \"arguments\": \"{\\\"zone\\\": \\\"CET\\\"}\"}\n</tool_call>";
        foreach (var pieces in Cuts(output))
        {
            var (content, calls) = ReadAll(ToolCallSyntax.Hermes, pieces);
            // The newline before the tag is layout, as templates write it between a turn's text and its calls.
            Assert.Equal("Let me check.", content);
            Assert.Equal(["weather", "time"], calls.Select(c => c.Name));
            Assert.Equal("{\"city\":\"Paris\"}", calls[0].Arguments);
            Assert.Equal("{\"zone\": \"CET\"}", calls[1].Arguments);
        }
    }

    [Fact]
    public void TextBeforeATagStreamsAtOnceAndOnlyAPossibleTagIsHeldBack()
    {
        var reader = ToolCallSyntax.Hermes.CreateReader();
        Assert.Equal("Hello", Assert.Single(reader.Push("Hello <tool")).Content);
        Assert.Empty(reader.Push("_ca"));
        // The space waited with the tag's beginning, and comes with the text that shows it was neither.
        Assert.Equal(" <tool_cat> and more", Assert.Single(reader.Push("t> and more")).Content);
        Assert.False(reader.Called);
    }

    [Theory]
    [InlineData("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}\n</tool_call>")] // unbalanced JSON
    [InlineData("<tool_call>\n{\"arguments\": {}}\n</tool_call>")]                       // no name
    [InlineData("<tool_call>\n{\"name\": \"f\", \"arguments\": [1]}")]                  // arguments not an object, never closed
    public void WhatIsNotACallStaysTheTextItWas(string output)
    {
        var (content, calls) = ReadAll(ToolCallSyntax.Hermes, [output]);
        Assert.Empty(calls);
        Assert.Equal(output, content);
    }

    [Fact]
    public void Llama3CallsAreTheWholeOutputAndPlainAnswersStreamAtOnce()
    {
        foreach (var pieces in Cuts("  {\"name\": \"weather\", \"parameters\": {\"city\": \"Oslo\"}}; {\"name\": \"time\", \"parameters\": {}}"))
        {
            var (content, calls) = ReadAll(ToolCallSyntax.Llama3, pieces);
            Assert.Equal("", content);
            Assert.Equal(["weather", "time"], calls.Select(c => c.Name));
            Assert.Equal("{\"city\":\"Oslo\"}", calls[0].Arguments);
        }

        var reader = ToolCallSyntax.Llama3.CreateReader();
        Assert.Equal("The answer", Assert.Single(reader.Push("The answer")).Content);
        var (text, none) = ReadAll(ToolCallSyntax.Llama3, ["{not json at all}"]);
        Assert.Equal("{not json at all}", text);
        Assert.Empty(none);
    }

    [Theory]
    [InlineData("[TOOL_CALLS][{\"name\": \"weather\", \"arguments\": {\"city\": \"Rome\"}}, {\"name\": \"time\", \"arguments\": {}}]")]
    [InlineData("[{\"name\": \"weather\", \"arguments\": {\"city\": \"Rome\"}}, {\"name\": \"time\", \"arguments\": {}}]")] // the control token skipped
    [InlineData("[TOOL_CALLS]weather[ARGS]{\"city\": \"Rome\"}[TOOL_CALLS]time[ARGS]{}")]                              // v11 tokenizers
    public void MistralCallsInEachOfItsForms(string output)
    {
        foreach (var pieces in Cuts(output))
        {
            var (content, calls) = ReadAll(ToolCallSyntax.Mistral, pieces);
            Assert.Equal("", content);
            Assert.Equal(["weather", "time"], calls.Select(c => c.Name));
            Assert.Equal("{\"city\":\"Rome\"}", calls[0].Arguments.Replace(" ", ""));
            Assert.Equal("{}", calls[1].Arguments);
        }
    }

    [Fact]
    public void ForcedCallsAreTheFormatTheReaderReads()
    {
        using var parameters = JsonDocument.Parse("{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}");
        ToolFunction[] tools = [new("weather", parameters.RootElement), new("time", parameters.RootElement)];
        foreach (var (syntax, key) in new[] { (ToolCallSyntax.Hermes, "arguments"), (ToolCallSyntax.Llama3, "parameters"), (ToolCallSyntax.Mistral, "arguments") })
        {
            var forced = syntax.Forced(tools);
            using var schema = JsonDocument.Parse(forced.Schema);
            var options = syntax == ToolCallSyntax.Mistral ? schema.RootElement.GetProperty("items").GetProperty("anyOf") : schema.RootElement.GetProperty("anyOf");
            Assert.Equal(["weather", "time"], options.EnumerateArray().Select(o => o.GetProperty("properties").GetProperty("name").GetProperty("const").GetString()));
            Assert.All(options.EnumerateArray(), o => Assert.True(JsonElement.DeepEquals(parameters.RootElement, o.GetProperty("properties").GetProperty(key))));

            // A value the schema allows, written between the prefix and suffix, reads back as that call.
            var call = $"{{\"name\": \"time\", \"{key}\": {{\"city\": \"Lima\"}}}}";
            var output = forced.Prefix + (syntax == ToolCallSyntax.Mistral ? $"[{call}]" : call) + forced.Suffix;
            var (content, calls) = ReadAll(syntax, [output]);
            Assert.Equal("", content);
            Assert.Equal("time", Assert.Single(calls).Name);
        }
    }

    /// <summary>Parameters with local references (as Pydantic and zod write them) keep them pointing at their definitions inside the forced call's schema.</summary>
    [Fact]
    public void ForcedCallsKeepEachToolsReferences()
    {
        using var weather = JsonDocument.Parse("""{"type": "object", "properties": {"place": {"$ref": "#/$defs/Place"}}, "required": ["place"], "$defs": {"Place": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8}}, "required": ["city"]}}}""");
        using var time = JsonDocument.Parse("""{"type": "object", "properties": {"zone": {"$ref": "#/definitions/Zone"}}, "required": ["zone"], "definitions": {"Zone": {"enum": ["CET", "UTC"]}}}""");
        ToolFunction[] tools = [new("weather", weather.RootElement), new("time", time.RootElement)];
        foreach (var syntax in new[] { ToolCallSyntax.Hermes, ToolCallSyntax.Llama3, ToolCallSyntax.Mistral })
        {
            var forced = syntax.Forced(tools);
            using var schema = JsonDocument.Parse(forced.Schema);
            var grammar = Exo.Text.Constraints.OutputGrammar.Json(schema.RootElement, forced.Prefix, forced.Suffix);
            Assert.NotNull(grammar);
            Assert.Contains("/anyOf/0/properties/", forced.Schema);
            Assert.DoesNotContain("\"#/$defs/Place\"", forced.Schema);
        }
    }

    [Fact]
    public void TemplatesAreToldApartByWhatTheyWriteForACall()
    {
        Assert.Equal("mistral", ToolCallSyntax.ForTemplate("{{ '[TOOL_CALLS]' + calls }}").Name);
        Assert.Equal("hermes", ToolCallSyntax.ForTemplate("{{ '<tool_call>' }}").Name);
        Assert.Equal("llama3", ToolCallSyntax.ForTemplate("{{ '<|start_header_id|>' }}").Name);
        Assert.Equal("hermes", ToolCallSyntax.ForTemplate("{{ messages }}").Name);
    }

    private static (string Content, List<ToolCall> Calls) ReadAll(ToolCallSyntax syntax, IEnumerable<string> pieces)
    {
        var reader = syntax.CreateReader();
        var all = pieces.SelectMany(reader.Push).ToList();
        all.AddRange(reader.Finish());
        return (string.Concat(all.Select(p => p.Content)), all.Where(p => p.Call is not null).Select(p => p.Call!).ToList());
    }

    /// <summary>The text whole, a character at a time, and in pieces of 2 to 7 characters.</summary>
    private static IEnumerable<string[]> Cuts(string text)
    {
        yield return [text];
        yield return text.Select(c => c.ToString()).ToArray();
        var random = new Random(7);
        var pieces = new List<string>();
        for (var i = 0; i < text.Length;)
        {
            var n = Math.Min(random.Next(2, 8), text.Length - i);
            pieces.Add(text.Substring(i, n));
            i += n;
        }

        yield return [.. pieces];
    }
}
