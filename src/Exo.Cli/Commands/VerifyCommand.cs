using System.CommandLine;
using System.Globalization;
using Exo.Inference;
using Exo.Inference.Backends;
using Exo.Inference.Kernels;
using Exo.Inference.Verification;

namespace Exo.Cli.Commands;

internal static class VerifyCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model")
        {
            Description = "Model folder holding config.json, the weights, reference.json and reference.bin; or a GGUF file",
            Required = true,
        };
        var reference = new Option<DirectoryInfo?>("--reference")
        {
            Description = "Folder holding reference.json and reference.bin (default: the model folder, or the GGUF file's folder)",
        };
        var tolerance = new Option<double>("--tolerance")
        {
            Description = "Largest relative logit error (max |Δ| / max |ref|) that passes",
            DefaultValueFactory = _ => ModelVerifier.DefaultTolerance,
        };
        var backend = new BackendChoice("cpu");
        var command = new Command("verify",
            "Check the engine against transformers' reference results: logits, hidden states, greedy tokens, and " +
            "exact equality of 2- and 3-stage sharded runs with the whole model. Exits 0 only if every case passes.")
        {
            model,
            reference,
            tolerance,
        };
        backend.AddTo(command);
        command.SetAction(parse => CommandErrors.Run(() =>
            Run(Path.GetFullPath(parse.GetValue(model)!), parse.GetValue(reference)?.FullName, parse.GetValue(tolerance), backend.Options(parse, ReferenceKernels.Instance))));
        return command;
    }

    private static int Run(string model, string? reference, double tolerance, BackendOptions backend)
    {
        var passed = true;
        var cases = 0;
        Console.WriteLine($"verifying {model} (tolerance {tolerance:G3})");
        foreach (var report in new ModelVerifier(model, backend, referenceDirectory: reference, describe: b => Console.WriteLine($"backend: {b}")).Run())
        {
            cases++;
            var ok = report.Passed(tolerance);
            passed &= ok;
            var hidden = string.Join(" ", report.HiddenErrors.Select(e => e.ToString("0.0e+0", CultureInfo.InvariantCulture)));
            var shards = report.ShardMismatches.Count == 0
                ? $"{report.ShardSplits} splits exact"
                : $"{report.ShardMismatches.Count}/{report.ShardSplits} splits DIFFER ({string.Join("; ", report.ShardMismatches.Take(3))})";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"case {report.Index}: {report.PromptTokens} tokens  logits rel err {report.LogitError:0.00e+0}  " +
                $"greedy {report.GreedyMatches}/{report.GreedyTotal}  stepwise {(report.StepwiseExact ? "exact" : report.StepwiseMustBeExact || report.StepwiseError > tolerance ? "DIFFERS" : $"within {report.StepwiseError:0.0e+0}")}  " +
                $"shards {shards}  {(ok ? "PASS" : "FAIL")}"));
            Console.WriteLine($"  hidden rel err by layer boundary: {hidden}");
        }

        if (cases == 0)
        {
            Console.Error.WriteLine("error: the reference file has no cases");
            return 2;
        }

        Console.WriteLine(passed ? $"PASS: {cases} cases" : $"FAIL: see the cases marked FAIL above");
        return passed ? 0 : 1;
    }
}
