using System.Text.Json;

namespace Exo.Text.Templates;

/// <summary>
/// What transformers' <c>tokenizer.chat_template</c> holds after loading a model folder: one template (a str), a set of
/// named ones (a dict, which need not contain "default"), or nothing.
/// </summary>
public sealed record ChatTemplateSources(string? Single, IReadOnlyDictionary<string, string>? Named)
{
    public static ChatTemplateSources None { get; } = new(null, null);

    public bool IsEmpty => Single is null && Named is null;

    /// <summary>
    /// The template used when no name is asked for and no tools are given: the single template or the "default" one.
    /// </summary>
    public string? Default => Single ?? Named?.GetValueOrDefault("default");
}

/// <summary>
/// Reads a model folder's chat templates with transformers' precedence (4.5x to 5.x):
/// <list type="number">
/// <item>a processor's legacy <c>chat_template.json</c> (<c>{"chat_template": "..."}</c>), which AutoProcessor prefers to
/// <c>chat_template.jinja</c> and refuses beside <c>additional_chat_templates/</c>;</item>
/// <item><c>chat_template.jinja</c> (named "default") and <c>additional_chat_templates/NAME.jinja</c>: when any of these
/// exist they replace whatever tokenizer_config.json holds;</item>
/// <item>tokenizer_config.json's <c>chat_template</c>: a string, or a list of <c>{name, template}</c>.</item>
/// </list>
/// </summary>
internal static class ChatTemplateFiles
{
    public const string JinjaFile = "chat_template.jinja";
    public const string LegacyProcessorFile = "chat_template.json";
    public const string AdditionalDirectory = "additional_chat_templates";

    /// <summary>Template files larger than this are refused: a template is untrusted input, read whole.</summary>
    private const long MaxTemplateBytes = 16 << 20;

    public static ChatTemplateSources Read(string directory, JsonElement? tokenizerConfig)
    {
        var additional = ReadAdditional(directory);
        var legacyPath = Path.Combine(directory, LegacyProcessorFile);
        if (File.Exists(legacyPath))
        {
            if (additional.Count > 0)
            {
                throw Error("Cannot load chat template due to conflicting files - this checkpoint combines a legacy chat_template.json file with separate template files, which is not supported. To resolve this error, replace the legacy chat_template.json file with a modern chat_template.jinja file.");
            }
            return new ChatTemplateSources(ReadLegacyProcessorFile(legacyPath), null);
        }

        var jinjaPath = Path.Combine(directory, JinjaFile);
        if (File.Exists(jinjaPath))
        {
            additional["default"] = ReadText(jinjaPath);
        }
        if (additional.Count > 0)
        {
            return additional.Count == 1 && additional.TryGetValue("default", out var only)
                ? new ChatTemplateSources(only, null)
                : new ChatTemplateSources(null, additional);
        }
        return FromTokenizerConfig(tokenizerConfig);
    }

    private static Dictionary<string, string> ReadAdditional(string directory)
    {
        var templates = new Dictionary<string, string>(StringComparer.Ordinal);
        var folder = Path.Combine(directory, AdditionalDirectory);
        if (!Directory.Exists(folder))
        {
            return templates;
        }
        var options = new EnumerationOptions { MatchCasing = MatchCasing.CaseSensitive, RecurseSubdirectories = false, AttributesToSkip = 0 };
        foreach (var path in Directory.EnumerateFiles(folder, "*.jinja", options).Order(StringComparer.Ordinal))
        {
            templates[Path.GetFileName(path)[..^".jinja".Length]] = ReadText(path);
        }
        return templates;
    }

    private static string ReadLegacyProcessorFile(string path)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(ReadText(path));
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw Error($"{path} is not valid JSON: {e.Message}");
        }
        return root.ValueKind == JsonValueKind.Object && root.TryGetProperty("chat_template", out var template) && template.ValueKind == JsonValueKind.String
            ? template.GetString()!
            : throw Error($"{path} must be an object whose 'chat_template' is a string");
    }

    private static ChatTemplateSources FromTokenizerConfig(JsonElement? config)
    {
        if (config is not { } root || !root.TryGetProperty("chat_template", out var template))
        {
            return ChatTemplateSources.None;
        }
        switch (template.ValueKind)
        {
            case JsonValueKind.Null:
                return ChatTemplateSources.None;
            case JsonValueKind.String:
                return new ChatTemplateSources(template.GetString(), null);
            case JsonValueKind.Array:
                // transformers builds {entry["name"]: entry["template"]}: a repeated name keeps its last template.
                var named = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var entry in template.EnumerateArray())
                {
                    if (entry.ValueKind != JsonValueKind.Object
                        || !entry.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String
                        || !entry.TryGetProperty("template", out var text) || text.ValueKind != JsonValueKind.String)
                    {
                        throw Error("tokenizer_config.json: each chat_template entry needs string 'name' and 'template'");
                    }
                    named[name.GetString()!] = text.GetString()!;
                }
                return new ChatTemplateSources(null, named);
            default:
                throw Error("tokenizer_config.json: chat_template must be a string or a list of {name, template}");
        }
    }

    public static string ReadText(string path)
    {
        try
        {
            if (new FileInfo(path).Length > MaxTemplateBytes)
            {
                throw Error($"'{path}' is larger than {MaxTemplateBytes >> 20} MiB");
            }
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TemplateException(TemplateErrorKind.Value, $"cannot read '{path}': {e.Message}", 0, e);
        }
    }

    private static TemplateException Error(string message) => new(TemplateErrorKind.Value, message, 0);
}
