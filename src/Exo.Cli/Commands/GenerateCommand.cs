using System.CommandLine;
using Exo.Inference.Generation;

namespace Exo.Cli.Commands;

internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Hugging Face model folder or GGUF file", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "Text to continue (no chat template; see `exo chat`)", Required = true };
        var sampling = new SamplingOptions();
        var engine = new EngineOptions();
        var command = new Command("generate", "Continue a prompt with a model on this machine, streaming the text to stdout.") { model, prompt };
        sampling.AddTo(command);
        engine.AddTo(command);
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            using var loaded = engine.Load(parse, parse.GetValue(model)!.FullName);
            var local = loaded.Model;
            var ids = local.Tokenizer.Encode(parse.GetValue(prompt)!);
            Stream(local, ids, sampling.Sampling(parse), sampling.MaxTokens(parse), Console.Out);
            Console.Out.WriteLine();
            return 0;
        }));
        return command;
    }

    /// <summary>Generates from prompt ids and writes the text as it forms; returns the generated ids (end token excluded).</summary>
    public static List<int> Stream(LocalModel local, int[] promptIds, Inference.Sampling.SamplingParameters sampling, int maxTokens, TextWriter output)
    {
        var decoder = local.Tokenizer.CreateDecoder(skipSpecialTokens: true);
        var generated = new List<int>();
        foreach (var step in local.Generator.Generate(promptIds, sampling, maxTokens, local.Special.StopTokenIds))
        {
            if (step.Finish == FinishReason.Stop) break;
            generated.Add(step.Token);
            output.Write(decoder.Add(step.Token));
            output.Flush();
        }

        output.Write(decoder.Flush());
        return generated;
    }
}
