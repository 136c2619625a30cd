using System.Text.Json;
using Exo.Text.ToolCalls;

namespace Exo.Api.OpenAi;

internal enum ToolChoiceMode { None, Auto, Required, Named }

/// <summary>The functions a chat request offers, and whether the model may, must or must not call one (tool_choice).</summary>
internal sealed record ChatTools(IReadOnlyList<ToolFunction> Functions, ToolChoiceMode Mode, string? Named)
{
    public static readonly ChatTools Nothing = new([], ToolChoiceMode.None, null);

    /// <summary>Whether the answer is read for calls.</summary>
    public bool Read => Mode != ToolChoiceMode.None;

    /// <summary>The functions one of which the answer must call; null when it need not.</summary>
    public IReadOnlyList<ToolFunction>? Forced => Mode switch
    {
        ToolChoiceMode.Required => Functions,
        ToolChoiceMode.Named => [Functions.First(f => f.Name == Named)],
        _ => null,
    };

    private const int MostTools = 128;

    public static ChatTools Parse(RequestReader r)
    {
        var functions = new List<ToolFunction>();
        if (r.Field("tools") is { } tools)
        {
            if (tools.ValueKind != JsonValueKind.Array) throw OpenAiException.BadRequest("'tools' must be an array", "tools", "invalid_type");
            if (tools.GetArrayLength() > MostTools) throw OpenAiException.BadRequest($"'tools' may hold at most {MostTools} functions", "tools", "invalid_value");
            var i = 0;
            foreach (var tool in tools.EnumerateArray()) functions.Add(Function(tool, $"tools[{i++}]"));
            if (functions.DistinctBy(f => f.Name).Count() != functions.Count) throw OpenAiException.BadRequest("the names in 'tools' must differ", "tools", "invalid_value");
        }

        var (mode, named) = Choice(r.Field("tool_choice"), functions);
        if (r.Field("parallel_tool_calls") is { ValueKind: not (JsonValueKind.True or JsonValueKind.False) })
            throw OpenAiException.BadRequest("'parallel_tool_calls' must be a boolean", "parallel_tool_calls", "invalid_type");
        return functions.Count == 0 ? Nothing : new ChatTools(functions, mode, named);
    }

    /// <summary>{"type": "function", "function": {"name", "description"?, "parameters"?, "strict"?}}.</summary>
    private static ToolFunction Function(JsonElement tool, string param)
    {
        if (tool.ValueKind != JsonValueKind.Object) throw OpenAiException.BadRequest($"'{param}' must be an object", param, "invalid_type");
        var reader = new RequestReader(tool);
        if (reader.String("type") != "function") throw OpenAiException.BadRequest($"'{param}.type' must be 'function'", param + ".type", "invalid_value");
        if (reader.Field("function") is not { ValueKind: JsonValueKind.Object } function)
            throw OpenAiException.BadRequest($"'{param}.function' must be an object", param + ".function", "invalid_type");
        var f = new RequestReader(function);
        var name = f.String("name");
        if (name is null || !OpenAiNames.IsName(name))
            throw OpenAiException.BadRequest($"'{param}.function.name' must be 1 to 64 letters, digits, '_' or '-'", param + ".function.name", "invalid_value");
        f.String("description");
        f.Bool("strict");
        var parameters = f.Field("parameters") switch
        {
            null => EmptyParameters.RootElement,
            { ValueKind: JsonValueKind.Object } p => p,
            _ => throw OpenAiException.BadRequest($"'{param}.function.parameters' must be a JSON schema object", param + ".function.parameters", "invalid_type"),
        };
        return new ToolFunction(name, parameters.Clone());
    }

    private static readonly JsonDocument EmptyParameters = JsonDocument.Parse("{\"type\": \"object\", \"properties\": {}}");

    /// <summary>"none", "auto", "required", or {"type": "function", "function": {"name"}}; "auto" by default when there are tools.</summary>
    private static (ToolChoiceMode, string?) Choice(JsonElement? choice, List<ToolFunction> functions)
    {
        if (choice is null) return (functions.Count > 0 ? ToolChoiceMode.Auto : ToolChoiceMode.None, null);
        if (functions.Count == 0)
        {
            return choice is { ValueKind: JsonValueKind.String } c && c.GetString() == "none"
                ? (ToolChoiceMode.None, null)
                : throw OpenAiException.BadRequest("'tool_choice' is only allowed when 'tools' are given", "tool_choice", "invalid_value");
        }

        switch (choice.Value.ValueKind)
        {
            case JsonValueKind.String:
                return choice.Value.GetString() switch
                {
                    "none" => (ToolChoiceMode.None, null),
                    "auto" => (ToolChoiceMode.Auto, null),
                    "required" => (ToolChoiceMode.Required, null),
                    var other => throw OpenAiException.BadRequest($"'tool_choice' is '{other}'; it must be 'none', 'auto', 'required' or a function", "tool_choice", "invalid_value"),
                };
            case JsonValueKind.Object:
                var reader = new RequestReader(choice.Value);
                if (reader.String("type") != "function" || reader.Field("function") is not { ValueKind: JsonValueKind.Object } function)
                    throw OpenAiException.BadRequest("'tool_choice' as an object must be {\"type\": \"function\", \"function\": {\"name\": ...}}", "tool_choice", "invalid_value");
                var name = new RequestReader(function).String("name");
                if (name is null || functions.All(f => f.Name != name))
                    throw OpenAiException.BadRequest($"'tool_choice' names the function '{name}', which is not among 'tools'", "tool_choice", "invalid_value");
                return (ToolChoiceMode.Named, name);
            default:
                throw OpenAiException.BadRequest("'tool_choice' must be a string or an object", "tool_choice", "invalid_type");
        }
    }
}
