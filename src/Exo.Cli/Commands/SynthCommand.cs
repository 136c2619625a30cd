using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Exo.Inference.Conversion;

namespace Exo.Cli.Commands;

internal static class SynthCommand
{
    public static Command Create()
    {
        var defaults = new SyntheticShape();
        var output = new Option<string>("--out") { Description = "Folder (hf) or file (gguf) to write", Required = true };
        var format = new Option<string>("--format") { Description = "hf (safetensors folder) or gguf", DefaultValueFactory = _ => "gguf" };
        var type = new Option<string>("--type") { Description = "Weight type: f32|f16|bf16 (hf, gguf) or q8_0|q4_0|q4_1|q4_k|q5_k|q6_k (gguf)", DefaultValueFactory = _ => "f16" };
        var dim = new Option<int>("--dim") { Description = "Hidden size", DefaultValueFactory = _ => defaults.Dim };
        var layers = new Option<int>("--layers") { Description = "Decoder layers", DefaultValueFactory = _ => defaults.Layers };
        var ffn = new Option<int>("--ffn") { Description = "Feed-forward size", DefaultValueFactory = _ => defaults.Ffn };
        var heads = new Option<int>("--heads") { Description = "Attention heads", DefaultValueFactory = _ => defaults.Heads };
        var kvHeads = new Option<int>("--kv-heads") { Description = "Key/value heads", DefaultValueFactory = _ => defaults.KvHeads };
        var vocab = new Option<int>("--vocab") { Description = "Vocabulary size (byte tokens and 4 specials, the rest unused)", DefaultValueFactory = _ => defaults.Vocab };
        var seed = new Option<ulong>("--seed") { Description = "Random seed: the same seed writes the same bytes", DefaultValueFactory = _ => defaults.Seed };
        var command = new Command("synth",
            "Write a random-weight Llama-family model of any shape (default: Llama 3.2 1B's, small vocabulary) with a byte-level " +
            "tokenizer and a chat template, streaming, for benchmarks that need realistic sizes without downloads.")
        {
            output, format, type, dim, layers, ffn, heads, kvHeads, vocab, seed,
        };
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            var shape = new SyntheticShape(parse.GetValue(dim), parse.GetValue(layers), parse.GetValue(ffn), parse.GetValue(heads),
                parse.GetValue(kvHeads), parse.GetValue(vocab), Seed: parse.GetValue(seed));
            var weightType = ConvertCommand.ParseType(parse.GetValue(type)!);
            var path = Path.GetFullPath(parse.GetValue(output)!);
            var clock = Stopwatch.StartNew();
            var config = SyntheticModel.Config(shape);
            Console.WriteLine($"writing {path}: llama, dim {config.HiddenSize}, {config.LayerCount} layers, ffn {config.IntermediateSize}, " +
                              $"{config.HeadCount}/{config.KvHeadCount} heads, vocab {config.VocabSize}, {weightType}");
            switch (parse.GetValue(format))
            {
                case "hf":
                    SyntheticModel.WriteHuggingFace(path, shape, weightType, ConvertCommand.ProgressPrinter());
                    break;
                case "gguf":
                    SyntheticModel.WriteGguf(path, shape, weightType, ConvertCommand.ProgressPrinter());
                    break;
                default:
                    throw new CliInputException($"--format {parse.GetValue(format)}: choose hf or gguf");
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done in {clock.Elapsed.TotalSeconds:0.0} s"));
            return 0;
        }));
        return command;
    }
}
