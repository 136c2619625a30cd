using System.CommandLine;
using System.Text.Json;
using Exo.Text.Templates;
using Exo.Text.Tokenization;

namespace Exo.Cli.Commands;

/// <summary>
/// <c>exo template</c>: transformers' <c>apply_chat_template</c> from the command line, with each of its arguments as an
/// option and its errors (same messages) as one <c>error:</c> line and exit code 2. Where Python returns objects (tensors,
/// a BatchEncoding) it prints JSON.
/// </summary>
internal static class TemplateCommand
{
    /// <summary>apply_chat_template's own arguments: in Python a template variable cannot take these names.</summary>
    private static readonly string[] ArgumentNames =
    [
        "conversation", "tools", "documents", "chat_template", "add_generation_prompt", "continue_final_message", "tokenize", "padding",
        "truncation", "max_length", "return_tensors", "return_dict", "return_assistant_tokens_mask", "tokenizer_kwargs",
    ];

    private static readonly string[] TensorTypes = ["pt", "tf", "np", "jax", "mlx"];

    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Model folder: chat_template.jinja, additional_chat_templates/, chat_template.json or tokenizer_config.json's chat_template (transformers' precedence); tokenizer.json for --tokenize", Required = true };
        var messages = new Option<FileInfo>("--messages") { Description = "conversation: JSON file with the array of chat messages", Required = true };
        var tools = new Option<FileInfo?>("--tools") { Description = "tools: JSON file with the array of tool definitions (JSON schemas); selects the model's 'tool_use' template when it has one" };
        var documents = new Option<FileInfo?>("--documents") { Description = "documents: JSON file with the documents for retrieval-augmented generation" };
        var chatTemplate = new Option<string?>("--chat-template") { Description = "chat_template: the name of one of the model's templates, or template text" };
        var chatTemplateFile = new Option<FileInfo?>("--chat-template-file") { Description = "chat_template read from a file (instead of --chat-template)" };
        var generationPrompt = new Option<bool>("--add-generation-prompt") { Description = "add_generation_prompt: end with the header of a new assistant turn" };
        var continueFinal = new Option<bool>("--continue-final-message") { Description = "continue_final_message: end right after the last message's content (not with --add-generation-prompt)" };
        var tokenize = new Option<bool>("--tokenize") { Description = "tokenize: print the token ids (JSON array) instead of the text; transformers' default is on, the CLI's off" };
        var padding = new Option<string?>("--padding") { Description = "padding, with --tokenize: false|do_not_pad, true|longest (no-op for one conversation but a multiple), max_length" };
        var truncation = new Option<string?>("--truncation") { Description = "truncation, with --tokenize: true|longest_first|only_first (cut to --max-length), false|do_not_truncate" };
        var maxLength = new Option<int?>("--max-length") { Description = "max_length, with --tokenize: the length --truncation cuts to and --padding max_length pads to (default: the model's model_max_length)" };
        var returnTensors = new Option<string?>("--return-tensors") { Description = "return_tensors (pt|tf|np|jax|mlx), with --tokenize: the CLI cannot make tensors; it prints what they would hold, JSON arrays with the batch axis ([[...]])" };
        var returnDict = new Option<bool>("--return-dict") { Description = "return_dict, with --tokenize: print the BatchEncoding as a JSON object (input_ids, attention_mask, assistant_masks)" };
        var assistantMask = new Option<bool>("--return-assistant-tokens-mask") { Description = "return_assistant_tokens_mask, with --return-dict: add assistant_masks, 1 for tokens inside the template's {% generation %} blocks" };
        var tokenizerKwargs = new Option<string?>("--tokenizer-kwargs") { Description = "tokenizer_kwargs: JSON object of further tokenizer-call arguments: pad_to_multiple_of, padding_side, return_attention_mask" };
        var variables = new Option<string[]>("--var") { Description = "**kwargs: template variable NAME=VALUE (VALUE parsed as JSON when it is JSON, else a string); repeatable", AllowMultipleArgumentsPerToken = false };
        var command = new Command("template", "Render a model's chat template as transformers' apply_chat_template does; print the prompt exactly, or its tokens.")
        {
            model, messages, tools, documents, chatTemplate, chatTemplateFile, generationPrompt, continueFinal, tokenize, padding, truncation, maxLength,
            returnTensors, returnDict, assistantMask, tokenizerKwargs, variables,
        };
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            var folder = parse.GetValue(model)!.FullName;
            var tokenizing = parse.GetValue(tokenize);
            var asDict = parse.GetValue(returnDict);
            var mask = parse.GetValue(assistantMask);
            if (asDict && !tokenizing)
            {
                throw new CliInputException("`return_dict=True` is incompatible with `tokenize=False`, because there is no dict of tokenizer outputs to return.");
            }
            if (mask && !asDict)
            {
                throw new CliInputException("`return_assistant_tokens_mask=True` is incompatible with `return_dict=False`");
            }
            if (parse.GetValue(chatTemplate) is not null && parse.GetValue(chatTemplateFile) is not null)
            {
                throw new CliInputException("give --chat-template or --chat-template-file, not both");
            }
            var tensors = parse.GetValue(returnTensors);
            if (tensors is not null && !TensorTypes.Contains(tensors))
            {
                throw new CliInputException($"{tensors} is not a valid TensorType, please select one of ['pt', 'tf', 'np', 'jax', 'mlx']");
            }
            var encoding = tokenizing
                ? EncodingOptions(parse.GetValue(padding), parse.GetValue(truncation), parse.GetValue(maxLength), parse.GetValue(tokenizerKwargs), mask)
                : null;
            var conversation = ReadConversation(parse.GetValue(messages)!);
            var options = new ChatTemplateOptions
            {
                Tools = parse.GetValue(tools) is { } toolFile ? ReadJson(toolFile) : null,
                Documents = parse.GetValue(documents) is { } documentFile ? ReadJson(documentFile) : null,
                Template = parse.GetValue(chatTemplateFile) is { } templateFile ? ReadText(templateFile) : parse.GetValue(chatTemplate),
                AddGenerationPrompt = parse.GetValue(generationPrompt),
                ContinueFinalMessage = parse.GetValue(continueFinal),
                Variables = Variables(parse.GetValue(variables) ?? []),
            };
            if (options.ContinueFinalMessage && mask && !options.AddGenerationPrompt)
            {
                throw new CliInputException("continue_final_message is not compatible with return_assistant_tokens_mask.");
            }
            var rendering = ChatTemplate.FromModelDirectory(folder).Apply(conversation, options);
            if (encoding is null)
            {
                Console.Out.Write(rendering.Text);
                return 0;
            }
            if (mask && !rendering.TemplateHasGenerationBlocks)
            {
                Console.Error.WriteLine("warning: return_assistant_tokens_mask==True but chat template does not contain `{% generation %}` keyword.");
            }
            var tokenizer = Tokenizer.FromModelDirectory(folder);
            var encoded = ChatEncoder.Encode(tokenizer, TokenizerCallDefaults.FromModelDirectory(folder, tokenizer), rendering, encoding.Value.Options);
            Console.Out.WriteLine(Print(encoded, asDict, tensors is not null, encoding.Value.AttentionMask));
            return 0;
        }));
        return command;
    }

    /// <summary>The tokenizer call's arguments, validated with the messages of transformers' enums and of Python's call.</summary>
    private static (ChatEncodingOptions Options, bool AttentionMask)? EncodingOptions(string? padding, string? truncation, int? maxLength, string? kwargsJson, bool assistantMask)
    {
        var strategy = padding switch
        {
            null or "false" or "False" or "do_not_pad" => PaddingStrategy.DoNotPad,
            "true" or "True" or "longest" => PaddingStrategy.Longest,
            "max_length" => PaddingStrategy.MaxLength,
            _ => throw new CliInputException($"{padding} is not a valid PaddingStrategy, please select one of ['longest', 'max_length', 'do_not_pad']"),
        };
        var truncate = truncation switch
        {
            null or "false" or "False" or "do_not_truncate" => false,
            "true" or "True" or "longest_first" or "only_first" => true,
            "only_second" => throw new CliInputException("--truncation only_second cuts the second sequence of a pair; a conversation is one sequence"),
            _ => throw new CliInputException($"{truncation} is not a valid TruncationStrategy, please select one of ['only_first', 'only_second', 'longest_first', 'do_not_truncate']"),
        };
        if (maxLength is < 0)
        {
            throw new CliInputException("--max-length must not be negative");
        }
        var options = new ChatEncodingOptions { Padding = strategy, Truncation = truncate, MaxLength = maxLength, AssistantMask = assistantMask };
        var attentionMask = true;
        if (kwargsJson is null)
        {
            return (options, attentionMask);
        }
        var kwargs = ParseJson(kwargsJson, "--tokenizer-kwargs");
        if (kwargs.ValueKind != JsonValueKind.Object)
        {
            throw new CliInputException("--tokenizer-kwargs must be a JSON object");
        }
        var unknown = new List<string>();
        foreach (var property in kwargs.EnumerateObject())
        {
            var value = property.Value;
            switch (property.Name)
            {
                case "add_special_tokens" or "padding" or "truncation" or "max_length" or "return_tensors":
                    throw new CliInputException($"PreTrainedTokenizerBase.__call__() got multiple values for keyword argument '{property.Name}'");
                case "pad_to_multiple_of":
                    options = options with
                    {
                        PadToMultipleOf = value.ValueKind == JsonValueKind.Null ? null
                            : value.TryGetInt32(out var multiple) && multiple > 0 ? multiple
                            : throw new CliInputException("tokenizer_kwargs: pad_to_multiple_of must be a positive integer"),
                    };
                    break;
                case "padding_side":
                    options = options with
                    {
                        PaddingSide = value.ValueKind == JsonValueKind.String && value.GetString() is "left" or "right"
                            ? value.GetString()
                            : throw new CliInputException($"Padding side should be selected between 'right' and 'left', current value: {value.GetRawText()}"),
                    };
                    break;
                case "return_attention_mask":
                    attentionMask = value.ValueKind is JsonValueKind.True or JsonValueKind.Null
                        || (value.ValueKind != JsonValueKind.False ? throw new CliInputException("tokenizer_kwargs: return_attention_mask must be true or false") : false);
                    break;
                default:
                    unknown.Add($"'{property.Name}': {value.GetRawText()}");
                    break;
            }
        }
        return unknown.Count > 0
            ? throw new CliInputException($"Keyword arguments {{{string.Join(", ", unknown)}}} not recognized.")
            : (options, attentionMask);
    }

    /// <summary>input_ids as transformers returns them, or the BatchEncoding's fields; tensors become arrays with the batch axis.</summary>
    private static string Print(ChatEncoding encoded, bool asDict, bool tensors, bool attentionMask)
    {
        object Shape(int[] values) => tensors ? new[] { values } : values;
        if (!asDict)
        {
            return JsonSerializer.Serialize(Shape(encoded.InputIds));
        }
        var fields = new Dictionary<string, object> { ["input_ids"] = Shape(encoded.InputIds) };
        if (attentionMask)
        {
            fields["attention_mask"] = Shape(encoded.AttentionMask);
        }
        if (encoded.AssistantMask is { } assistant)
        {
            fields["assistant_masks"] = Shape(assistant);
        }
        return JsonSerializer.Serialize(fields);
    }

    private static Dictionary<string, object?> Variables(string[] assignments)
    {
        var extra = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var assignment in assignments)
        {
            var equals = assignment.IndexOf('=');
            if (equals <= 0)
            {
                throw new CliInputException($"--var '{assignment}' is not NAME=VALUE");
            }
            var name = assignment[..equals];
            if (ArgumentNames.Contains(name))
            {
                throw new CliInputException($"--var {name}: '{name}' is an argument of apply_chat_template, given by its own option (--{name.Replace('_', '-')})");
            }
            extra[name] = ParseValue(assignment[(equals + 1)..]);
        }
        return extra;
    }

    /// <summary>One conversation: transformers would render a list of conversations as a batch, which the CLI does not.</summary>
    private static JsonElement ReadConversation(FileInfo file)
    {
        var conversation = ReadJson(file);
        if (conversation.ValueKind == JsonValueKind.Array && conversation.GetArrayLength() > 0 && conversation[0].ValueKind == JsonValueKind.Array)
        {
            throw new CliInputException($"'{file.FullName}' holds a batch of conversations; give one (a JSON array of messages)");
        }
        return conversation;
    }

    private static object? ParseValue(string text)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return text;
        }
    }

    private static JsonElement ParseJson(string text, string what)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new CliInputException($"{what} is not JSON: {e.Message}");
        }
    }

    private static string ReadText(FileInfo file)
    {
        try
        {
            return File.ReadAllText(file.FullName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliInputException($"cannot read '{file.FullName}': {e.Message}");
        }
    }

    private static JsonElement ReadJson(FileInfo file)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(file.FullName));
            return document.RootElement.Clone();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            throw new CliInputException($"cannot read JSON from '{file.FullName}': {e.Message}");
        }
    }
}
