using System.CommandLine;
using System.Text.Json;
using Exo.Text.Templates;

namespace Exo.Cli.Commands;

internal static class TemplateCommand
{
    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Model folder holding tokenizer_config.json (or chat_template.jinja)", Required = true };
        var messages = new Option<FileInfo>("--messages") { Description = "JSON file with the array of chat messages", Required = true };
        var tools = new Option<FileInfo?>("--tools") { Description = "JSON file with the array of tool definitions" };
        var generationPrompt = new Option<bool>("--add-generation-prompt") { Description = "End with the header of a new assistant turn" };
        var variables = new Option<string[]>("--var") { Description = "Template variable NAME=VALUE (VALUE parsed as JSON when it is JSON, else a string); repeatable", AllowMultipleArgumentsPerToken = false };
        var command = new Command("template", "Render a model's chat template and print the prompt exactly.") { model, messages, tools, generationPrompt, variables };
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            var template = ChatTemplate.FromModelDirectory(parse.GetValue(model)!.FullName);
            var messageJson = ReadJson(parse.GetValue(messages)!);
            var toolJson = parse.GetValue(tools) is { } toolFile ? ReadJson(toolFile) : (JsonElement?)null;
            var extra = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var assignment in parse.GetValue(variables) ?? [])
            {
                var equals = assignment.IndexOf('=');
                if (equals <= 0)
                {
                    throw new CliInputException($"--var '{assignment}' is not NAME=VALUE");
                }
                extra[assignment[..equals]] = ParseValue(assignment[(equals + 1)..]);
            }
            Console.Out.Write(template.Render(messageJson, toolJson, parse.GetValue(generationPrompt), extra));
            return 0;
        }));
        return command;
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
