using System.CommandLine;
using Exo.Inference.Generation;
using Exo.Text.Templates;

namespace Exo.Cli.Commands;

internal static class ChatCommand
{
    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Hugging Face model folder or GGUF file, with a chat template", Required = true };
        var system = new Option<string?>("--system") { Description = "A system message that starts the conversation" };
        var sampling = new SamplingOptions();
        var engine = new EngineOptions();
        var command = new Command("chat",
            "Talk to a model on this machine. Each line you type is a user message; answers stream as they are generated " +
            "and the conversation is kept. Type /reset to start over, /exit (or end input) to leave.") { model, system };
        sampling.AddTo(command);
        engine.AddTo(command);
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            using var loaded = engine.Load(parse, parse.GetValue(model)!.FullName);
            var local = loaded.Model;
            _ = local.ChatTemplate; // a folder without a template fails now, not after the first question
            var parameters = sampling.Sampling(parse);
            var maxTokens = sampling.MaxTokens(parse);
            var opening = parse.GetValue(system) is { } s ? new List<ChatMessage> { new("system", s) } : [];
            var history = new List<ChatMessage>(opening);
            var interactive = !Console.IsInputRedirected;

            while (true)
            {
                if (interactive) Console.Write("> ");
                var line = Console.ReadLine();
                if (line is null or "/exit") return 0;
                if (line == "/reset")
                {
                    history = new List<ChatMessage>(opening);
                    continue;
                }

                if (string.IsNullOrWhiteSpace(line)) continue;
                history.Add(new ChatMessage("user", line));
                var ids = local.EncodeChat(history);
                var context = local.Model.Config.MaxPositionEmbeddings;
                if (ids.Length >= context)
                {
                    Console.Error.WriteLine($"the conversation has {ids.Length} tokens, the model's context is {context}: type /reset to start over");
                    history.RemoveAt(history.Count - 1);
                    continue;
                }

                var answer = GenerateCommand.Stream(local, ids, parameters, maxTokens, Console.Out);
                Console.Out.WriteLine();
                history.Add(new ChatMessage("assistant", local.Tokenizer.Decode(answer.ToArray(), skipSpecialTokens: true)));
            }
        }));
        return command;
    }
}
