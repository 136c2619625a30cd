using System.Text.Json;
using Exo.Text.Templates;

namespace Exo.Text.Tests.Templates;

/// <summary>
/// Where a model folder keeps its chat templates and which one renders, as transformers 4.5x-5.x loads them
/// (PreTrainedTokenizerBase._from_pretrained, ProcessorMixin.get_processor_dict) and picks one (get_chat_template).
/// </summary>
public sealed class ChatTemplateSourceTests
{
    private static readonly JsonElement User = JsonDocument.Parse("""[{"role": "user", "content": "hi"}]""").RootElement;
    private static readonly JsonElement OneTool = JsonDocument.Parse("""[{"type": "function", "function": {"name": "f"}}]""").RootElement;

    private static string Render(string folder, string? name = null, JsonElement? tools = null) =>
        ChatTemplate.FromModelDirectory(folder).Apply(User, new ChatTemplateOptions { Template = name, Tools = tools }).Text;

    private static void Config(TempDirectory dir, string chatTemplateJson) =>
        File.WriteAllText(dir.File("tokenizer_config.json"), $$"""{"bos_token": "<s>", "eos_token": {"content": "</s>"}, "chat_template": {{chatTemplateJson}}}""");

    private static void Additional(TempDirectory dir, string name, string template)
    {
        Directory.CreateDirectory(dir.File("additional_chat_templates"));
        File.WriteAllText(Path.Combine(dir.File("additional_chat_templates"), name + ".jinja"), template);
    }

    [Fact]
    public void TokenizerConfigStringRendersWithSpecialTokens()
    {
        using var dir = new TempDirectory();
        Config(dir, "\"{{ bos_token }}{{ messages[0].content }}{{ eos_token }}\"");
        Assert.Equal("<s>hi</s>", Render(dir.Path));
        Assert.Equal("{{ bos_token }}{{ messages[0].content }}{{ eos_token }}", ChatTemplate.DefaultSource(dir.Path));
    }

    [Fact]
    public void NamedListPicksToolUseWithToolsDefaultWithoutAndAnyByName()
    {
        using var dir = new TempDirectory();
        Config(dir, """[{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T{{ tools | length }}"}, {"name": "rag", "template": "R"}]""");
        Assert.Equal("D", Render(dir.Path));
        Assert.Equal("T1", Render(dir.Path, tools: OneTool));
        Assert.Equal("R", Render(dir.Path, "rag"));
        Assert.Equal("R", Render(dir.Path, "rag", OneTool));
        // A chat_template that names no template is template text (transformers falls through to rendering it).
        Assert.Equal("custom hi", Render(dir.Path, "custom {{ messages[0].content }}"));
        Assert.Equal("D", ChatTemplate.DefaultSource(dir.Path));
    }

    [Fact]
    public void NamedListWithoutDefaultNeedsAName()
    {
        using var dir = new TempDirectory();
        Config(dir, """[{"name": "tool_use", "template": "T"}, {"name": "b", "template": "B"}]""");
        var error = Assert.Throws<TemplateException>(() => Render(dir.Path));
        Assert.Equal(TemplateErrorKind.Value, error.Kind);
        Assert.Equal("This model has multiple chat templates with no default specified! Please either pass a chat template or the name of the template you wish to use to the `chat_template` argument. Available template names are ['b', 'tool_use'].", error.Detail);
        Assert.Equal("T", Render(dir.Path, tools: OneTool));
        Assert.Equal("B", Render(dir.Path, "b"));
        Assert.Null(ChatTemplate.DefaultSource(dir.Path));
    }

    [Fact]
    public void JinjaFileReplacesTheConfigsTemplates()
    {
        using var dir = new TempDirectory();
        Config(dir, """[{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]""");
        File.WriteAllText(dir.File("chat_template.jinja"), "J{{ add_generation_prompt }}");
        // The files clobber tokenizer_config.json's list: tool_use is gone with it.
        Assert.Equal("JFalse", Render(dir.Path, tools: OneTool));
        Assert.Equal("tool_use", Render(dir.Path, "tool_use"));
        Assert.Equal("J{{ add_generation_prompt }}", ChatTemplate.DefaultSource(dir.Path));
    }

    [Fact]
    public void AdditionalTemplatesJoinTheJinjaFileAsNamedTemplates()
    {
        using var dir = new TempDirectory();
        Config(dir, "\"config\"");
        File.WriteAllText(dir.File("chat_template.jinja"), "J");
        Additional(dir, "tool_use", "T");
        Additional(dir, "rag", "R");
        File.WriteAllText(Path.Combine(dir.File("additional_chat_templates"), "notes.txt"), "not a template");
        var template = ChatTemplate.FromModelDirectory(dir.Path);
        Assert.Equal(["default", "rag", "tool_use"], template.Sources.Named!.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("J", Render(dir.Path));
        Assert.Equal("T", Render(dir.Path, tools: OneTool));
        Assert.Equal("R", Render(dir.Path, "rag"));
    }

    [Fact]
    public void AdditionalTemplatesAloneHaveNoDefault()
    {
        using var dir = new TempDirectory();
        Config(dir, "\"config\"");
        Additional(dir, "rag", "R");
        var error = Assert.Throws<TemplateException>(() => Render(dir.Path));
        Assert.EndsWith("Available template names are ['rag'].", error.Detail);
        Assert.Equal("R", Render(dir.Path, "rag"));
    }

    [Fact]
    public void LegacyProcessorFileWinsOverTheJinjaFile()
    {
        using var dir = new TempDirectory();
        Config(dir, "\"config\"");
        File.WriteAllText(dir.File("chat_template.jinja"), "J");
        File.WriteAllText(dir.File("chat_template.json"), """{"chat_template": "P{{ messages | length }}"}""");
        Assert.Equal("P1", Render(dir.Path));
        Assert.Equal("P{{ messages | length }}", ChatTemplate.DefaultSource(dir.Path));
    }

    [Fact]
    public void LegacyProcessorFileBesideAdditionalTemplatesIsRefused()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("chat_template.json"), """{"chat_template": "P"}""");
        Additional(dir, "rag", "R");
        var error = Assert.Throws<TemplateException>(() => ChatTemplate.FromModelDirectory(dir.Path));
        Assert.StartsWith("Cannot load chat template due to conflicting files - this checkpoint combines a legacy chat_template.json file", error.Detail);
    }

    [Theory]
    [InlineData("chat_template.json", "{\"template\": \"P\"}", "must be an object whose 'chat_template' is a string")]
    [InlineData("chat_template.json", "{\"chat_template\": ", "is not valid JSON")]
    [InlineData("tokenizer_config.json", "{\"chat_template\": [{\"name\": \"default\"}]}", "each chat_template entry needs string 'name' and 'template'")]
    [InlineData("tokenizer_config.json", "{\"chat_template\": 5}", "chat_template must be a string or a list of {name, template}")]
    public void MalformedSourcesAreTemplateErrors(string file, string content, string message)
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File(file), content);
        var error = Assert.Throws<TemplateException>(() => ChatTemplate.FromModelDirectory(dir.Path));
        Assert.Equal(TemplateErrorKind.Value, error.Kind);
        Assert.Contains(message, error.Detail);
    }

    [Fact]
    public void FolderWithoutTemplateLoadsAndRendersOnlyAGivenTemplate()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"bos_token": "<s>", "pad_token": "", "chat_template": null}""");
        var template = ChatTemplate.FromModelDirectory(dir.Path);
        Assert.True(template.Sources.IsEmpty);
        Assert.Null(ChatTemplate.DefaultSource(dir.Path));
        var error = Assert.Throws<TemplateException>(() => Render(dir.Path));
        Assert.StartsWith("Cannot use chat template functions because tokenizer.chat_template is not set and no template argument was passed!", error.Detail);
        // An empty special token is left out, as in transformers' special_tokens_map.
        Assert.Equal("<s>|False", Render(dir.Path, "{{ bos_token }}|{{ pad_token is defined }}"));
    }

    [Fact]
    public void BrokenTemplateFailsOnlyTheRendersThatUseIt()
    {
        using var dir = new TempDirectory();
        Config(dir, """[{"name": "default", "template": "fine"}, {"name": "tool_use", "template": "{% if %}"}]""");
        Assert.Equal("fine", Render(dir.Path));
        Assert.Equal(TemplateErrorKind.Syntax, Assert.Throws<TemplateException>(() => Render(dir.Path, tools: OneTool)).Kind);
    }

    [Theory]
    [InlineData("messages")]
    [InlineData("tools")]
    [InlineData("add_generation_prompt")]
    public void VariablesCannotTakeTheTemplatesOwnArguments(string name)
    {
        using var dir = new TempDirectory();
        Config(dir, "\"x\"");
        var options = new ChatTemplateOptions { Variables = new Dictionary<string, object?> { [name] = 1 } };
        var error = Assert.Throws<TemplateException>(() => ChatTemplate.FromModelDirectory(dir.Path).Apply(User, options));
        Assert.Equal($"render() got multiple values for keyword argument '{name}'", error.Detail);
    }

    [Fact]
    public void ToolsMustBeSchemasAndDocumentsReachTheTemplate()
    {
        using var dir = new TempDirectory();
        Config(dir, "\"{{ documents[0].title }}\"");
        var template = ChatTemplate.FromModelDirectory(dir.Path);
        var documents = JsonDocument.Parse("""[{"title": "Doc", "text": "t"}]""").RootElement;
        Assert.Equal("Doc", template.Apply(User, new ChatTemplateOptions { Documents = documents }).Text);
        var error = Assert.Throws<TemplateException>(() => template.Apply(User, new ChatTemplateOptions { Tools = JsonDocument.Parse("[\"f\"]").RootElement }));
        Assert.Equal("Tools should either be a JSON schema, or a callable function with type hints and a docstring suitable for auto-conversion to a schema.", error.Detail);
    }
}
