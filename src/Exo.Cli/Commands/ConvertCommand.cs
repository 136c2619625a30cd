using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Exo.Inference.Conversion;
using Exo.Inference.Weights;

namespace Exo.Cli.Commands;

internal static class ConvertCommand
{
    private static readonly DType[] Types = [DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q4_K, DType.Q5_K, DType.Q6_K];

    public static Command Create()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Hugging Face model folder (config.json, safetensors, tokenizer.json)", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "GGUF file to write", Required = true };
        var type = new Option<string>("--type")
        {
            Description = $"Type of the weight matrices: {string.Join("|", Types.Select(t => t.ToString().ToLowerInvariant()))} (vectors stay f32)",
            DefaultValueFactory = _ => "f16",
        };
        var command = new Command("convert",
            "Write a Hugging Face model as one GGUF file, with its tokenizer and chat template, that both this engine and llama.cpp run.")
        {
            model,
            output,
            type,
        };
        command.SetAction(parse => CommandErrors.Run(() =>
            Run(parse.GetValue(model)!.FullName, parse.GetValue(output)!.FullName, ParseType(parse.GetValue(type)!))));
        return command;
    }

    internal static DType ParseType(string name)
    {
        var type = DTypes.Parse(name);
        return Types.Contains(type) ? type : throw new CliInputException($"--type {name} is not one of {string.Join(", ", Types)}");
    }

    private static int Run(string model, string output, DType type)
    {
        var clock = Stopwatch.StartNew();
        using var conversion = GgufConversion.FromHuggingFace(model, type);
        foreach (var note in conversion.Notes) Console.WriteLine($"note: {note}");
        var total = conversion.Writer.TensorBytes;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"writing {output}: {conversion.Config.ModelType}, {conversion.Config.LayerCount} layers, {type}, {total / 1e6:0.0} MB of tensors"));
        conversion.Writer.Write(output, ProgressPrinter());
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"done in {clock.Elapsed.TotalSeconds:0.0} s: {new FileInfo(output).Length / 1e6:0.0} MB"));
        return 0;
    }

    /// <summary>Prints a line every tenth of the tensors (and the last), so long conversions show they are moving.</summary>
    internal static Action<int, int, string> ProgressPrinter() => (index, count, name) =>
    {
        if (index == count - 1 || index % Math.Max(1, count / 10) == 0)
            Console.WriteLine($"  [{index + 1}/{count}] {name}");
    };
}
