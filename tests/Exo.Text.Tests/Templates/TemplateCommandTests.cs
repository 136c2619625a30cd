using System.Text.Json;

namespace Exo.Text.Tests.Templates;

/// <summary>`exo template` as a real process: each apply_chat_template option, and bad input as one error line with exit code 2.</summary>
public sealed class TemplateCommandTests : IDisposable
{
    private static readonly string Qwen = Path.Combine(RepositoryPaths.Shared, "realtok", "qwen2.5-instruct");

    private const string Generation = "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' %}{% generation %}{{ m.content }}<|im_end|>{% endgeneration %}{% else %}{{ m.content }}<|im_end|>{% endif %}\n{% endfor %}";

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static (int ExitCode, string Output, string Error) Exo(params string[] args) => ServiceProcess.Run("exo.dll", null, ["template", .. args]);

    private static JsonElement Case(string name) => SharedData.ReadJson(Path.Combine(Qwen, "refs.json")).GetProperty("chat_cases").EnumerateArray()
        .First(c => c.GetProperty("name").GetString() == name);

    private string Write(string name, string content)
    {
        File.WriteAllText(_temp.File(name), content);
        return _temp.File(name);
    }

    private string Messages(string caseName) => Write(caseName + ".json", Case(caseName).GetProperty("messages").GetRawText());

    private string Conversation() => Write("conversation.json", """
        [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello! 你好"}, {"role": "user", "content": "Bye"}]
        """);

    private static void AssertInputError((int ExitCode, string Output, string Error) run, string message)
    {
        Assert.Equal(2, run.ExitCode);
        Assert.Equal("", run.Output);
        Assert.Equal($"error: {message}", run.Error.TrimEnd('\n'));
    }

    [Fact]
    public void PrintsTheTextTransformersRenders()
    {
        var (code, output, error) = Exo("--model", Qwen, "--messages", Messages("multi_turn_gen"), "--add-generation-prompt");
        Assert.Equal(0, code);
        Assert.Equal("", error);
        Assert.Equal(Case("multi_turn_gen").GetProperty("text").GetString(), output);
    }

    [Fact]
    public void ToolsReachTheTemplate()
    {
        var entry = Case("tools_user_only");
        var tools = Write("tools.json", entry.GetProperty("tools").GetRawText());
        var (code, output, _) = Exo("--model", Qwen, "--messages", Messages("tools_user_only"), "--tools", tools, "--add-generation-prompt");
        Assert.Equal(0, code);
        Assert.Equal(entry.GetProperty("text").GetString(), output);
    }

    [Fact]
    public void ContinueFinalMessageEndsAfterTheLastContentAndRefusesAGenerationPrompt()
    {
        var (code, output, _) = Exo("--model", Qwen, "--messages", Messages("continue_final_message"), "--continue-final-message");
        Assert.Equal(0, code);
        Assert.Equal(Case("continue_final_message").GetProperty("text").GetString(), output);
        AssertInputError(Exo("--model", Qwen, "--messages", Messages("continue_final_message"), "--continue-final-message", "--add-generation-prompt"),
            "continue_final_message and add_generation_prompt are not compatible. Use continue_final_message when you want the model to continue the final message, and add_generation_prompt when you want to add a header that will prompt it to start a new assistant message instead.");
    }

    [Fact]
    public void ChatTemplateIsANameOrTextOrAFile()
    {
        File.WriteAllText(_temp.File("tokenizer_config.json"), """
            {"eos_token": "</s>", "chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}, {"name": "rag", "template": "R{{ documents | length }}"}]}
            """);
        var messages = Conversation();
        var documents = Write("documents.json", """[{"title": "a", "text": "b"}, {"title": "c", "text": "d"}]""");
        var tools = Write("tools.json", """[{"type": "function", "function": {"name": "f"}}]""");
        Assert.Equal((0, "D", ""), Exo("--model", _temp.Path, "--messages", messages));
        Assert.Equal((0, "T", ""), Exo("--model", _temp.Path, "--messages", messages, "--tools", tools));
        Assert.Equal((0, "R2", ""), Exo("--model", _temp.Path, "--messages", messages, "--chat-template", "rag", "--documents", documents));
        Assert.Equal((0, "3 </s>", ""), Exo("--model", _temp.Path, "--messages", messages, "--chat-template", "{{ messages | length }} {{ eos_token }}"));
        var file = Write("custom.jinja", "{{ messages[0].content }}|{{ greeting }}|{{ n + 1 }}");
        Assert.Equal((0, "Hi there|hello|3", ""), Exo("--model", _temp.Path, "--messages", messages, "--chat-template-file", file, "--var", "greeting=hello", "--var", "n=2"));
        AssertInputError(Exo("--model", _temp.Path, "--messages", messages, "--chat-template", "rag", "--chat-template-file", file),
            "give --chat-template or --chat-template-file, not both");
    }

    [Fact]
    public void TokenizePrintsTheIdsOfTheText()
    {
        var entry = Case("multi_turn_gen");
        var ids = SharedData.Ints(entry.GetProperty("raw_ids_of_text"));
        var (code, output, _) = Exo("--model", Qwen, "--messages", Messages("multi_turn_gen"), "--add-generation-prompt", "--tokenize");
        Assert.Equal(0, code);
        Assert.Equal(JsonSerializer.Serialize(ids) + "\n", output);
        (code, output, _) = Exo("--model", Qwen, "--messages", Messages("multi_turn_gen"), "--add-generation-prompt", "--tokenize", "--return-tensors", "pt");
        Assert.Equal(0, code);
        Assert.Equal(JsonSerializer.Serialize(new[] { ids }) + "\n", output);
        AssertInputError(Exo("--model", Qwen, "--messages", Messages("multi_turn_gen"), "--tokenize", "--return-tensors", "torch"),
            "torch is not a valid TensorType, please select one of ['pt', 'tf', 'np', 'jax', 'mlx']");
    }

    [Fact]
    public void ReturnDictPrintsTheFieldsAndTheAssistantMask()
    {
        var template = Write("generation.jinja", Generation);
        var (code, output, error) = Exo("--model", Qwen, "--messages", Conversation(), "--chat-template-file", template, "--tokenize", "--return-dict", "--return-assistant-tokens-mask");
        Assert.Equal(0, code);
        Assert.Equal("", error);
        using var result = JsonDocument.Parse(output);
        var ids = SharedData.Ints(result.RootElement.GetProperty("input_ids"));
        var mask = SharedData.Ints(result.RootElement.GetProperty("assistant_masks"));
        Assert.Equal(ids.Length, SharedData.Ints(result.RootElement.GetProperty("attention_mask")).Length);
        // The assistant's tokens: "Hello", "!", " ", "你好", "<|im_end|>".
        var first = Array.IndexOf(ids, 9707);
        Assert.Equal([9707, 0, 220, 108386, 151645], ids[first..(first + 5)]);
        Assert.Equal(Enumerable.Range(0, ids.Length).Select(i => i >= first && i < first + 5 ? 1 : 0), mask);
    }

    [Fact]
    public void AssistantMaskOfATemplateWithoutBlocksWarnsAndIsZero()
    {
        var (code, output, error) = Exo("--model", Qwen, "--messages", Conversation(), "--tokenize", "--return-dict", "--return-assistant-tokens-mask");
        Assert.Equal(0, code);
        Assert.Equal("warning: return_assistant_tokens_mask==True but chat template does not contain `{% generation %}` keyword.\n", error);
        using var result = JsonDocument.Parse(output);
        Assert.All(SharedData.Ints(result.RootElement.GetProperty("assistant_masks")), bit => Assert.Equal(0, bit));
    }

    [Fact]
    public void PaddingTruncationAndTokenizerKwargs()
    {
        var messages = Conversation();
        var (_, full, _) = Exo("--model", Qwen, "--messages", messages, "--tokenize");
        var ids = JsonSerializer.Deserialize<int[]>(full)!;

        var (code, output, _) = Exo("--model", Qwen, "--messages", messages, "--tokenize", "--truncation", "true", "--max-length", "5");
        Assert.Equal(0, code);
        Assert.Equal(ids[..5], JsonSerializer.Deserialize<int[]>(output));

        (code, output, _) = Exo("--model", Qwen, "--messages", messages, "--tokenize", "--return-dict", "--padding", "max_length", "--max-length", $"{ids.Length + 2}",
            "--tokenizer-kwargs", """{"padding_side": "left"}""");
        Assert.Equal(0, code);
        using (var padded = JsonDocument.Parse(output))
        {
            Assert.Equal([151643, 151643, .. ids], SharedData.Ints(padded.RootElement.GetProperty("input_ids")));
            Assert.Equal([0, 0, .. ids.Select(_ => 1)], SharedData.Ints(padded.RootElement.GetProperty("attention_mask")));
        }

        (code, output, _) = Exo("--model", Qwen, "--messages", messages, "--tokenize", "--return-dict", "--padding", "longest",
            "--tokenizer-kwargs", """{"pad_to_multiple_of": 64, "return_attention_mask": false}""");
        Assert.Equal(0, code);
        using (var multiple = JsonDocument.Parse(output))
        {
            Assert.Equal(64, multiple.RootElement.GetProperty("input_ids").GetArrayLength());
            Assert.False(multiple.RootElement.TryGetProperty("attention_mask", out _));
        }
    }

    [Theory]
    [InlineData("--return-dict", "`return_dict=True` is incompatible with `tokenize=False`, because there is no dict of tokenizer outputs to return.")]
    [InlineData("--tokenize --return-assistant-tokens-mask", "`return_assistant_tokens_mask=True` is incompatible with `return_dict=False`")]
    [InlineData("--tokenize --return-dict --return-assistant-tokens-mask --continue-final-message", "continue_final_message is not compatible with return_assistant_tokens_mask.")]
    [InlineData("--tokenize --padding sideways", "sideways is not a valid PaddingStrategy, please select one of ['longest', 'max_length', 'do_not_pad']")]
    [InlineData("--tokenize --truncation maybe", "maybe is not a valid TruncationStrategy, please select one of ['only_first', 'only_second', 'longest_first', 'do_not_truncate']")]
    [InlineData("--tokenize --tokenizer-kwargs {\"stride\":2}", "Keyword arguments {'stride': 2} not recognized.")]
    [InlineData("--tokenize --tokenizer-kwargs {\"max_length\":2}", "PreTrainedTokenizerBase.__call__() got multiple values for keyword argument 'max_length'")]
    [InlineData("--tokenize --tokenizer-kwargs [1]", "--tokenizer-kwargs must be a JSON object")]
    [InlineData("--var tools=[]", "--var tools: 'tools' is an argument of apply_chat_template, given by its own option (--tools)")]
    [InlineData("--var messages=[]", "render() got multiple values for keyword argument 'messages'")]
    [InlineData("--var novalue", "--var 'novalue' is not NAME=VALUE")]
    [InlineData("--tokenize --tokenizer-kwargs {\"padding_side\":\"up\"}", "Padding side should be selected between 'right' and 'left', current value: \"up\"")]
    public void BadArgumentsAreOneErrorLine(string arguments, string message) =>
        AssertInputError(Exo(["--model", Qwen, "--messages", Conversation(), .. arguments.Split(' ')]), message);

    [Fact]
    public void ModelWithoutTemplateOrABatchIsAnErrorLine()
    {
        File.WriteAllText(_temp.File("tokenizer_config.json"), "{}");
        AssertInputError(Exo("--model", _temp.Path, "--messages", Conversation()),
            "Cannot use chat template functions because tokenizer.chat_template is not set and no template argument was passed! For information about writing templates and setting the tokenizer.chat_template attribute, please see the documentation at https://huggingface.co/docs/transformers/main/en/chat_templating");
        var batch = Write("batch.json", """[[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]]""");
        AssertInputError(Exo("--model", Qwen, "--messages", batch), $"'{batch}' holds a batch of conversations; give one (a JSON array of messages)");
    }

    [Fact]
    public void HelpDescribesEveryOption()
    {
        var (code, output, _) = Exo("--help");
        Assert.Equal(0, code);
        foreach (var option in new[] { "--messages", "--tools", "--documents", "--chat-template", "--chat-template-file", "--add-generation-prompt", "--continue-final-message",
                     "--tokenize", "--padding", "--truncation", "--max-length", "--return-tensors", "--return-dict", "--return-assistant-tokens-mask", "--tokenizer-kwargs", "--var" })
        {
            Assert.Contains(option + " ", output);
        }
    }
}
