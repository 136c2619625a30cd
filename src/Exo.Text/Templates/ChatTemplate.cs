using System.Text.Json;
using Exo.Text.Tokenization;

namespace Exo.Text.Templates;

/// <summary>One chat message for <see cref="ChatTemplate.Render(IReadOnlyList{ChatMessage}, JsonElement?, bool, IReadOnlyDictionary{string, object?}?, bool)"/>.</summary>
public sealed record ChatMessage(string Role, string? Content);

/// <summary>
/// A model's chat template (tokenizer_config.json's <c>chat_template</c>, or chat_template.jinja), rendered as
/// transformers' <c>apply_chat_template</c> does, with the special tokens of tokenizer_config.json as variables.
/// </summary>
public sealed class ChatTemplate
{
    private readonly JinjaTemplate _default;
    private readonly JinjaTemplate? _toolUse;
    private readonly Dictionary<string, object?> _specialTokens;

    private ChatTemplate(JinjaTemplate template, JinjaTemplate? toolUse, Dictionary<string, object?> specialTokens)
    {
        _default = template;
        _toolUse = toolUse;
        _specialTokens = specialTokens;
    }

    /// <summary>A template from its source, with the special-token variables it sees (null ones are left undefined).</summary>
    public static ChatTemplate FromSource(string source, string? bosToken = null, string? eosToken = null, TimeProvider? clock = null)
    {
        var tokens = new Dictionary<string, object?>(StringComparer.Ordinal);
        AddIfPresent(tokens, "bos_token", bosToken);
        AddIfPresent(tokens, "eos_token", eosToken);
        return new ChatTemplate(JinjaTemplate.Parse(source, clock), null, tokens);
    }

    public static ChatTemplate FromModelDirectory(string directory, TimeProvider? clock = null)
    {
        var configPath = Path.Combine(directory, "tokenizer_config.json");
        var config = SpecialTokenInfo.ReadOptionalJson(configPath);
        var tokens = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var name in new[] { "bos_token", "eos_token", "unk_token", "pad_token" })
        {
            AddIfPresent(tokens, name, SpecialTokenInfo.TokenText(config, name));
        }

        var jinjaPath = Path.Combine(directory, "chat_template.jinja");
        if (File.Exists(jinjaPath))
        {
            return new ChatTemplate(JinjaTemplate.Parse(ReadText(jinjaPath), clock), null, tokens);
        }
        if (config is not { } root || !root.TryGetProperty("chat_template", out var template) || template.ValueKind == JsonValueKind.Null)
        {
            throw new TemplateException(TemplateErrorKind.Value, $"{directory} has no chat template (no chat_template in tokenizer_config.json and no chat_template.jinja)", 0);
        }
        switch (template.ValueKind)
        {
            case JsonValueKind.String:
                return new ChatTemplate(JinjaTemplate.Parse(template.GetString()!, clock), null, tokens);
            case JsonValueKind.Array:
                var named = new Dictionary<string, JinjaTemplate>(StringComparer.Ordinal);
                foreach (var entry in template.EnumerateArray())
                {
                    if (entry.ValueKind != JsonValueKind.Object
                        || !entry.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String
                        || !entry.TryGetProperty("template", out var text) || text.ValueKind != JsonValueKind.String)
                    {
                        throw new TemplateException(TemplateErrorKind.Value, $"{configPath}: each chat_template entry needs string 'name' and 'template'", 0);
                    }
                    named[name.GetString()!] = JinjaTemplate.Parse(text.GetString()!, clock);
                }
                var fallback = named.GetValueOrDefault("default")
                    ?? throw new TemplateException(TemplateErrorKind.Value, $"{configPath}: the chat_template list has no 'default' entry", 0);
                return new ChatTemplate(fallback, named.GetValueOrDefault("tool_use"), tokens);
            default:
                throw new TemplateException(TemplateErrorKind.Value, $"{configPath}: chat_template must be a string or a list of {{name, template}}", 0);
        }
    }

    /// <summary>The default template's source text in a model folder (what GGUF's tokenizer.chat_template holds), or null.</summary>
    public static string? DefaultSource(string directory)
    {
        var jinjaPath = Path.Combine(directory, "chat_template.jinja");
        if (File.Exists(jinjaPath)) return ReadText(jinjaPath);
        if (SpecialTokenInfo.ReadOptionalJson(Path.Combine(directory, "tokenizer_config.json")) is not { } config
            || !config.TryGetProperty("chat_template", out var template)) return null;
        return template.ValueKind switch
        {
            JsonValueKind.String => template.GetString(),
            JsonValueKind.Array => template.EnumerateArray()
                .Where(e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String && n.GetString() == "default")
                .Select(e => e.TryGetProperty("template", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null)
                .FirstOrDefault(),
            _ => null,
        };
    }

    private static string ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TemplateException(TemplateErrorKind.Value, $"cannot read '{path}': {e.Message}", 0, e);
        }
    }

    private static void AddIfPresent(Dictionary<string, object?> variables, string name, string? value)
    {
        if (value is not null)
        {
            variables[name] = value;
        }
    }

    public string Render(IReadOnlyList<ChatMessage> messages, JsonElement? tools, bool addGenerationPrompt,
        IReadOnlyDictionary<string, object?>? extraVariables = null, bool continueFinalMessage = false)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = messages.Select(m => (object?)new OrderedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["role"] = m.Role,
            ["content"] = m.Content,
        }).ToList();
        return RenderValues(list, tools, addGenerationPrompt, extraVariables, continueFinalMessage);
    }

    /// <summary>Renders OpenAI-style messages given as a JSON array (content, tool_calls, name, ... kept as they are).</summary>
    public string Render(JsonElement messages, JsonElement? tools, bool addGenerationPrompt,
        IReadOnlyDictionary<string, object?>? extraVariables = null, bool continueFinalMessage = false)
    {
        if (messages.ValueKind != JsonValueKind.Array)
        {
            throw new TemplateException(TemplateErrorKind.Value, "messages must be a JSON array", 0);
        }
        return RenderValues((List<object?>)PyJson.FromJson(messages)!, tools, addGenerationPrompt, extraVariables, continueFinalMessage);
    }

    private string RenderValues(List<object?> messages, JsonElement? tools, bool addGenerationPrompt,
        IReadOnlyDictionary<string, object?>? extraVariables, bool continueFinalMessage)
    {
        if (messages.Count == 0)
        {
            throw new TemplateException(TemplateErrorKind.Value, "Cannot apply chat template to an empty conversation. Provide at least one message.", 0);
        }
        if (continueFinalMessage && addGenerationPrompt)
        {
            throw new TemplateException(TemplateErrorKind.Value, "continue_final_message and add_generation_prompt are not compatible. Use continue_final_message when you want the model to continue the final message, and add_generation_prompt when you want to add a header that will prompt it to start a new assistant message instead.", 0);
        }
        var toolValue = tools is { ValueKind: not JsonValueKind.Null } t ? PyJson.FromJson(t) : null;
        var variables = new Dictionary<string, object?>(_specialTokens, StringComparer.Ordinal);
        foreach (var (name, value) in extraVariables ?? new Dictionary<string, object?>())
        {
            variables[name] = value;
        }
        variables["messages"] = messages;
        variables["tools"] = toolValue;
        variables["documents"] = null;
        variables["add_generation_prompt"] = addGenerationPrompt;
        var template = toolValue is not null && _toolUse is not null ? _toolUse : _default;
        var rendered = template.Render(variables);
        return continueFinalMessage ? CutAfterFinalMessage(rendered, messages[^1]) : rendered;
    }

    /// <summary>transformers' continue_final_message: drop what the template wrote after the last message's content.</summary>
    private static string CutAfterFinalMessage(string rendered, object? lastMessage)
    {
        var content = Builtins.GetItem(lastMessage, "content");
        if (content is List<object?> blocks)
        {
            content = blocks.AsEnumerable().Reverse()
                .Select(b => Builtins.GetItem(b, "text"))
                .FirstOrDefault(text => text is string)
                ?? throw new TemplateException(TemplateErrorKind.Value, "continue_final_message is set but we could not find any text to continue in the final message!", 0);
        }
        if (content is not string final)
        {
            throw new TemplateException(TemplateErrorKind.Value, "continue_final_message is set but the final message has no text content", 0);
        }
        var stripped = final.Trim();
        var location = rendered.LastIndexOf(stripped, StringComparison.Ordinal);
        if (location < 0)
        {
            throw new TemplateException(TemplateErrorKind.Value, "continue_final_message is set but the final message does not appear in the chat after applying the chat template! This can happen if the chat template deletes portions of the final message. Please verify the chat template and final message in your chat to ensure they are compatible.", 0);
        }
        var keep = final.TrimStart().Length;
        return location + keep <= rendered.Length && string.CompareOrdinal(rendered, location, final, 0, keep) == 0 && final.Length == keep
            ? rendered[..(location + keep)]
            : rendered[..(location + stripped.Length)];
    }
}
