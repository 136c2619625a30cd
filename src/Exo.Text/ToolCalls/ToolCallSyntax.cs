using System.Text;
using System.Text.Json;

namespace Exo.Text.ToolCalls;

/// <summary>Output that must be a call: <see cref="Prefix"/>, one JSON value matching <see cref="Schema"/> (JSON text), <see cref="Suffix"/>.</summary>
public sealed record ForcedCall(string Prefix, string Schema, string Suffix);

/// <summary>
/// How a model family writes tool calls: how to read them out of its output, and what output a forced call must be
/// (for tool_choice "required" or a named function, enforced by constrained decoding).
/// </summary>
public abstract class ToolCallSyntax
{
    /// <summary>Hermes and Qwen 2.5+: &lt;tool_call&gt;\n{"name": ..., "arguments": {...}}\n&lt;/tool_call&gt;.</summary>
    public static ToolCallSyntax Hermes { get; } = new HermesSyntax();

    /// <summary>Llama 3.1+: the whole answer is {"name": ..., "parameters": {...}} (after the special &lt;|python_tag|&gt;, when written).</summary>
    public static ToolCallSyntax Llama3 { get; } = new Llama3Syntax();

    /// <summary>Mistral: [TOOL_CALLS] (a control token) then [{"name": ..., "arguments": {...}}], or name[ARGS]{...} in its newer tokenizers.</summary>
    public static ToolCallSyntax Mistral { get; } = new MistralSyntax();

    public abstract string Name { get; }

    public abstract ToolCallReader CreateReader();

    /// <summary>The output a forced call to one of <paramref name="tools"/> must be.</summary>
    public abstract ForcedCall Forced(IReadOnlyList<ToolFunction> tools);

    /// <summary>
    /// The syntax a chat template teaches its model, told by what the template writes for a call; Hermes for a template
    /// that shows none (the form a template extended for tools is expected to use).
    /// </summary>
    public static ToolCallSyntax ForTemplate(string? templateSource)
    {
        if (templateSource is null) return Hermes;
        if (templateSource.Contains("[TOOL_CALLS]", StringComparison.Ordinal)) return Mistral;
        if (templateSource.Contains("<tool_call>", StringComparison.Ordinal)) return Hermes;
        if (templateSource.Contains("<|start_header_id|>", StringComparison.Ordinal)) return Llama3;
        return Hermes;
    }

    /// <summary>
    /// One object per tool: {"name": its name, <paramref name="argumentsKey"/>: its parameters}; any of them. The schema
    /// sits at <paramref name="at"/> (a JSON pointer) in the whole.
    /// </summary>
    protected static void WriteCallSchema(Utf8JsonWriter w, IReadOnlyList<ToolFunction> tools, string argumentsKey, string at = "#")
    {
        w.WriteStartObject();
        w.WriteStartArray("anyOf");
        for (var i = 0; i < tools.Count; i++)
        {
            var tool = tools[i];
            w.WriteStartObject();
            w.WriteString("type", "object");
            w.WriteStartObject("properties");
            w.WriteStartObject("name");
            w.WriteString("const", tool.Name);
            w.WriteEndObject();
            w.WritePropertyName(argumentsKey);
            WriteMoved(w, tool.Parameters, $"{at}/anyOf/{i}/properties/{argumentsKey}");
            w.WriteEndObject();
            w.WriteStartArray("required");
            w.WriteStringValue("name");
            w.WriteStringValue(argumentsKey);
            w.WriteEndArray();
            w.WriteBoolean("additionalProperties", false);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>
    /// A tool's parameters where the call's schema puts them: its local references ("#/$defs/X", as Pydantic and zod
    /// write them) pointed at <paramref name="at"/>, where their targets now are.
    /// </summary>
    private static void WriteMoved(Utf8JsonWriter w, JsonElement schema, string at)
    {
        switch (schema.ValueKind)
        {
            case JsonValueKind.Object:
                w.WriteStartObject();
                foreach (var property in schema.EnumerateObject())
                {
                    w.WritePropertyName(property.Name);
                    if (property.Name == "$ref" && property.Value.ValueKind == JsonValueKind.String && property.Value.GetString() is { } target && (target == "#" || target.StartsWith("#/", StringComparison.Ordinal)))
                        w.WriteStringValue(at + target[1..]);
                    else
                        WriteMoved(w, property.Value, at);
                }

                w.WriteEndObject();
                break;
            case JsonValueKind.Array:
                w.WriteStartArray();
                foreach (var item in schema.EnumerateArray()) WriteMoved(w, item, at);
                w.WriteEndArray();
                break;
            default:
                schema.WriteTo(w);
                break;
        }
    }

    protected static string Json(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer)) write(w);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private sealed class HermesSyntax : ToolCallSyntax
    {
        public override string Name => "hermes";

        public override ToolCallReader CreateReader() => new TaggedToolCallReader("<tool_call>", "</tool_call>");

        public override ForcedCall Forced(IReadOnlyList<ToolFunction> tools) =>
            new("<tool_call>\n", Json(w => WriteCallSchema(w, tools, "arguments")), "\n</tool_call>");
    }

    private sealed class Llama3Syntax : ToolCallSyntax
    {
        public override string Name => "llama3";

        // The special <|python_tag|> never reaches the text (special tokens are skipped), so the JSON itself says "call".
        public override ToolCallReader CreateReader() => new LeadingToolCallReader("<|python_tag|>", "{", ReadCalls);

        public override ForcedCall Forced(IReadOnlyList<ToolFunction> tools) => new("", Json(w => WriteCallSchema(w, tools, "parameters")), "");

        /// <summary>One call, or several separated by ';' as Llama 3.1 writes them.</summary>
        private static List<ToolCall>? ReadCalls(string text)
        {
            if (ToolCallJson.TryRead(text, allowArray: true) is { } calls) return calls;
            var all = new List<ToolCall>();
            foreach (var part in text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (ToolCallJson.TryRead(part, allowArray: false) is not [var call]) return null;
                all.Add(call);
            }

            return all;
        }
    }

    private sealed class MistralSyntax : ToolCallSyntax
    {
        private const string Arguments = "[ARGS]";

        public override string Name => "mistral";

        public override ToolCallReader CreateReader() => new LeadingToolCallReader("[TOOL_CALLS]", "[", ReadCalls);

        // [TOOL_CALLS] is a control token, which a grammar over text cannot write: the forced call is the array alone.
        public override ForcedCall Forced(IReadOnlyList<ToolFunction> tools) => new("", Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("type", "array");
            w.WritePropertyName("items");
            WriteCallSchema(w, tools, "arguments", "#/items");
            w.WriteNumber("minItems", 1);
            w.WriteEndObject();
        }), "");

        /// <summary>[{"name": ..., "arguments": ...}, ...], or name[ARGS]{...} repeated (the marker between calls already cut).</summary>
        private static List<ToolCall>? ReadCalls(string text)
        {
            if (text.StartsWith('[')) return ToolCallJson.TryRead(text, allowArray: true);
            var calls = new List<ToolCall>();
            foreach (var part in text.Split("[TOOL_CALLS]", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var split = part.IndexOf(Arguments, StringComparison.Ordinal);
                if (split <= 0) return null;
                using var arguments = TryParse(part[(split + Arguments.Length)..]);
                if (arguments is null || ToolCallJson.Arguments(arguments.RootElement) is not { } json) return null;
                calls.Add(new ToolCall(ToolCall.NewId(), part[..split].Trim(), json));
            }

            return calls;
        }

        private static JsonDocument? TryParse(string json)
        {
            try
            {
                return JsonDocument.Parse(json);
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }
}
