using System.Text.Json;
using Exo.Text.Tokenization;

namespace Exo.Text.Templates;

/// <summary>One chat message for <see cref="ChatTemplate.Render(IReadOnlyList{ChatMessage}, JsonElement?, bool, IReadOnlyDictionary{string, object?}?, bool)"/>.</summary>
public sealed record ChatMessage(string Role, string? Content);

/// <summary>
/// A model's chat templates, loaded from its folder as transformers loads them (see <see cref="ChatTemplateFiles"/>) and
/// rendered as its <c>apply_chat_template</c> does, with the special tokens of tokenizer_config.json as variables.
/// Templates are parsed on first use, as transformers compiles them, so a broken template fails the renders that use it.
/// </summary>
public sealed class ChatTemplate
{
    private static readonly string[] SpecialTokenNames = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    /// <summary>Names that apply_chat_template passes to the template itself: a variable of that name is Python's TypeError.</summary>
    private static readonly string[] ReservedVariables = ["messages", "tools", "documents", "add_generation_prompt"];

    private readonly ChatTemplateSources _sources;
    private readonly Dictionary<string, object?> _specialTokens;
    private readonly TimeProvider? _clock;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<JinjaTemplate>> _parsed = new(StringComparer.Ordinal);

    private ChatTemplate(ChatTemplateSources sources, Dictionary<string, object?> specialTokens, TimeProvider? clock)
    {
        _sources = sources;
        _specialTokens = specialTokens;
        _clock = clock;
    }

    /// <summary>What the model holds: one template, named ones, or none.</summary>
    public ChatTemplateSources Sources => _sources;

    /// <summary>A template from its source, with the special-token variables it sees (null ones are left undefined).</summary>
    public static ChatTemplate FromSource(string source, string? bosToken = null, string? eosToken = null, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        var tokens = new Dictionary<string, object?>(StringComparer.Ordinal);
        AddIfPresent(tokens, "bos_token", bosToken);
        AddIfPresent(tokens, "eos_token", eosToken);
        var template = new ChatTemplate(new ChatTemplateSources(source, null), tokens, clock);
        template.Parse(source);
        return template;
    }

    /// <summary>
    /// The chat templates of a model folder. A folder without one loads (as in transformers) and says so when rendered
    /// without a template argument; <see cref="ChatTemplateSources.IsEmpty"/> tells beforehand.
    /// </summary>
    public static ChatTemplate FromModelDirectory(string directory, TimeProvider? clock = null)
    {
        var config = SpecialTokenInfo.ReadOptionalJson(Path.Combine(directory, "tokenizer_config.json"));
        var tokens = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var name in SpecialTokenNames)
        {
            AddIfPresent(tokens, name, SpecialTokenInfo.TokenText(config, name));
        }
        return new ChatTemplate(ChatTemplateFiles.Read(directory, config), tokens, clock);
    }

    /// <summary>The default template's source text in a model folder (what GGUF's tokenizer.chat_template holds), or null.</summary>
    public static string? DefaultSource(string directory) =>
        ChatTemplateFiles.Read(directory, SpecialTokenInfo.ReadOptionalJson(Path.Combine(directory, "tokenizer_config.json"))).Default;

    private static void AddIfPresent(Dictionary<string, object?> variables, string name, string? value)
    {
        // transformers' special_tokens_map leaves out tokens that are unset or empty.
        if (!string.IsNullOrEmpty(value))
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
        return Apply(list, Options(tools, addGenerationPrompt, extraVariables, continueFinalMessage)).Text;
    }

    /// <summary>Renders OpenAI-style messages given as a JSON array (content, tool_calls, name, ... kept as they are).</summary>
    public string Render(JsonElement messages, JsonElement? tools, bool addGenerationPrompt,
        IReadOnlyDictionary<string, object?>? extraVariables = null, bool continueFinalMessage = false) =>
        Apply(messages, Options(tools, addGenerationPrompt, extraVariables, continueFinalMessage)).Text;

    private static ChatTemplateOptions Options(JsonElement? tools, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? variables, bool continueFinalMessage) =>
        new() { Tools = tools, AddGenerationPrompt = addGenerationPrompt, Variables = variables, ContinueFinalMessage = continueFinalMessage };

    /// <summary>Renders OpenAI-style messages (a JSON array) with every rendering argument of apply_chat_template.</summary>
    public ChatRendering Apply(JsonElement messages, ChatTemplateOptions options)
    {
        if (messages.ValueKind != JsonValueKind.Array)
        {
            throw new TemplateException(TemplateErrorKind.Value, "messages must be a JSON array", 0);
        }
        return Apply((List<object?>)PyJson.FromJson(messages)!, options);
    }

    private ChatRendering Apply(List<object?> messages, ChatTemplateOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (messages.Count == 0)
        {
            throw new TemplateException(TemplateErrorKind.Value, "Cannot apply chat template to an empty conversation. Provide at least one message.", 0);
        }
        var toolValue = options.Tools is { ValueKind: not JsonValueKind.Null } t ? PyJson.FromJson(t) : null;
        if (toolValue is not null && (toolValue is not List<object?> toolList || toolList.Any(tool => tool is not OrderedDictionary<string, object?>)))
        {
            throw new TemplateException(TemplateErrorKind.Value, "Tools should either be a JSON schema, or a callable function with type hints and a docstring suitable for auto-conversion to a schema.", 0);
        }
        var source = SelectSource(options.Template, toolValue is not null);
        if (options.ContinueFinalMessage && options.AddGenerationPrompt)
        {
            throw new TemplateException(TemplateErrorKind.Value, "continue_final_message and add_generation_prompt are not compatible. Use continue_final_message when you want the model to continue the final message, and add_generation_prompt when you want to add a header that will prompt it to start a new assistant message instead.", 0);
        }
        var variables = new Dictionary<string, object?>(_specialTokens, StringComparer.Ordinal);
        foreach (var (name, value) in options.Variables ?? new Dictionary<string, object?>())
        {
            if (ReservedVariables.Contains(name))
            {
                throw new TemplateException(TemplateErrorKind.Type, $"render() got multiple values for keyword argument '{name}'", 0);
            }
            variables[name] = value;
        }
        variables["messages"] = messages;
        variables["tools"] = toolValue;
        variables["documents"] = options.Documents is { } documents ? PyJson.FromJson(documents) : null;
        variables["add_generation_prompt"] = options.AddGenerationPrompt;
        var (rendered, generation) = Parse(source).RenderTracked(variables);
        var text = options.ContinueFinalMessage ? CutAfterFinalMessage(rendered, messages[^1]) : rendered;
        return new ChatRendering(text, generation, source);
    }

    /// <summary>
    /// transformers' get_chat_template: a name of the model's set picks that template; otherwise the argument is template
    /// text. Without one, a named set gives "tool_use" when tools are given and it exists, else "default".
    /// </summary>
    private string SelectSource(string? argument, bool hasTools)
    {
        if (_sources.Named is { } named)
        {
            if (argument is not null)
            {
                return named.GetValueOrDefault(argument) ?? argument;
            }
            if (hasTools && named.TryGetValue("tool_use", out var toolUse))
            {
                return toolUse;
            }
            return named.GetValueOrDefault("default")
                ?? throw new TemplateException(TemplateErrorKind.Value, "This model has multiple chat templates with no default specified! Please either pass a chat template or the name of the template you wish to use to the `chat_template` argument. Available template names are " + Py.Repr(named.Keys.Order(StringComparer.Ordinal).Cast<object?>().ToList()) + ".", 0);
        }
        return argument ?? _sources.Single
            ?? throw new TemplateException(TemplateErrorKind.Value, "Cannot use chat template functions because tokenizer.chat_template is not set and no template argument was passed! For information about writing templates and setting the tokenizer.chat_template attribute, please see the documentation at https://huggingface.co/docs/transformers/main/en/chat_templating", 0);
    }

    /// <summary>Parses a template once; template text passed as an argument is parsed each time, so it is never kept.</summary>
    private JinjaTemplate Parse(string source)
    {
        var known = source == _sources.Single || (_sources.Named?.Values.Contains(source) ?? false);
        return known
            ? _parsed.GetOrAdd(source, s => new Lazy<JinjaTemplate>(() => JinjaTemplate.Parse(s, _clock))).Value
            : JinjaTemplate.Parse(source, _clock);
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
