using System.CommandLine;
using Exo.Inference.Weights;

namespace Exo.Cli.Commands;

/// <summary>--quantize: quantize a model's weight matrices once at load, into memory.</summary>
internal static class QuantizeOption
{
    private static readonly DType[] Allowed = [DType.Q8_0, DType.Q4_0];

    public static Option<string?> Create() => new("--quantize")
    {
        Description = "Quantize the weight matrices at load (q8_0|q4_0); the files are unchanged",
    };

    public static DType? Value(ParseResult parse, Option<string?> option)
    {
        if (parse.GetValue(option) is not { } name) return null;
        var type = DTypes.Parse(name);
        return Allowed.Contains(type) ? type : throw new CliInputException($"--quantize {name}: choose q8_0 or q4_0");
    }
}
