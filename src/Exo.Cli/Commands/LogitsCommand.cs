using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Exo.Inference.Backends;
using Exo.Inference.Kernels;
using Exo.Inference.Model;
using Exo.Inference.Sampling;
using Exo.Inference.Verification;

namespace Exo.Cli.Commands;

/// <summary>
/// Compares this engine's logits with another engine's on the same tokens and file: the cross-check of a GGUF file
/// against llama.cpp (the benchmark harness's dump_logits writes the JSON this reads).
/// </summary>
internal static class LogitsCommand
{
    // A dump holds every position's logits; more tokens than this is not a cross-check but a benchmark.
    private const int MaxTokens = 4096;

    public static Command Create()
    {
        var model = new Option<FileSystemInfo>("--model") { Description = "Model folder or GGUF file", Required = true };
        var compare = new Option<FileInfo>("--compare")
        {
            Description = "JSON of the other engine's logits: {\"tokens\": [ids], \"logits\": [[one row of vocabulary size per token]]}",
        };
        var save = new Option<FileInfo>("--save")
        {
            Description = "Also write this engine's logits as such a JSON dump, for a later --compare (another machine, build or kernel set)",
        };
        var count = new Option<int>("--tokens")
        {
            Description = "Without --compare: tokens to run, t_i = (37i + 11) mod (vocab - 2) as llama.cpp's dump_logits picks them",
            DefaultValueFactory = _ => 16,
        };
        var tolerance = new Option<double>("--tolerance")
        {
            Description = "Largest relative error (max |Δ| / max |theirs|, per position) that passes",
            DefaultValueFactory = _ => 0.05,
        };
        var reference = new Option<bool>("--reference") { Description = "Run the reference kernels instead of the fast ones (CPU)" };
        var backend = new BackendChoice("cpu");
        var command = new Command("logits",
            "Run the tokens of another engine's logits dump through this engine and report, position by position, the " +
            "relative logit difference and whether the most likely token agrees. Exits 0 when every position is within the " +
            "tolerance. With --save, write this engine's logits as a dump too (or only, without --compare).")
        {
            model, compare, save, count, tolerance, reference,
        };
        backend.AddTo(command);
        command.SetAction(parse => CommandErrors.Run(() => Run(parse.GetValue(model)!.FullName, parse.GetValue(compare)?.FullName,
            parse.GetValue(save)?.FullName, parse.GetValue(count), parse.GetValue(tolerance), parse.GetValue(reference), backend.Options(parse, null))));
        return command;
    }

    private static int Run(string modelPath, string? comparePath, string? savePath, int count, double tolerance, bool reference, BackendOptions backend)
    {
        if (comparePath is null && savePath is null) throw new CliInputException("give --compare FILE, --save FILE or both");
        if (!(tolerance >= 0)) throw new CliInputException($"--tolerance must be a non-negative number, not {tolerance}");
        if (count is < 1 or > MaxTokens) throw new CliInputException($"--tokens must be 1 to {MaxTokens}, not {count}");
        // The dump is checked against the config before the (possibly large) weights are mapped.
        var vocab = ModelConfig.LoadAny(modelPath).VocabSize;
        var (tokens, theirs) = comparePath is null ? (BenchCommand.HarnessTokens(count, vocab), (float[]?)null) : ReadDump(comparePath, vocab);
        // Auto may fall back to the CPU, which then runs the fast kernels too.
        using var fast = reference || backend.Kind == BackendKind.Vulkan ? null : new FastKernels();
        using var stage = StageLoader.Load(modelPath, null, backend with { CpuKernels = fast is null ? ReferenceKernels.Instance : fast });
        if (!stage.IsFirst || !stage.IsLast) throw new CliInputException("logits needs the whole model");

        var ours = new float[tokens.Length * vocab];
        using var cache = stage.CreateCache(tokens.Length);
        stage.ForwardTokens([new SequenceChunk(cache, tokens.Length)], tokens, ours, LogitRows.All);
        if (savePath is not null) WriteDump(savePath, tokens, ours, vocab);
        if (theirs is null)
        {
            Console.WriteLine($"wrote the logits of {tokens.Length} tokens to {savePath}");
            return 0;
        }

        var worst = 0.0;
        var agree = 0;
        for (var t = 0; t < tokens.Length; t++)
        {
            var mine = ours.AsSpan(t * vocab, vocab);
            var other = theirs.AsSpan(t * vocab, vocab);
            var error = ModelVerifier.RelativeError(mine, other);
            var same = Sampler.Argmax(mine) == Sampler.Argmax(other);
            worst = Math.Max(worst, error);
            agree += same ? 1 : 0;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"position {t,4}: token {tokens[t],6}  rel err {error:0.00e+0}  argmax {(same ? "same" : "DIFFERS")}"));
        }

        var passed = worst <= tolerance;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{(passed ? "PASS" : "FAIL")}: worst rel err {worst:0.00e+0} (tolerance {tolerance:G3}), argmax agrees at {agree} of {tokens.Length} positions " +
            $"({stage.Backend})"));
        return passed ? 0 : 1;
    }

    /// <summary>Writes a dump in the format <see cref="ReadDump"/> reads; each float in its shortest form that reads back exactly.</summary>
    private static void WriteDump(string path, int[] tokens, float[] logits, int vocab)
    {
        try
        {
            using var stream = File.Create(path);
            using var json = new Utf8JsonWriter(stream);
            json.WriteStartObject();
            json.WriteStartArray("tokens");
            foreach (var token in tokens) json.WriteNumberValue(token);
            json.WriteEndArray();
            json.WriteStartArray("logits");
            for (var t = 0; t < tokens.Length; t++)
            {
                json.WriteStartArray();
                foreach (var value in logits.AsSpan(t * vocab, vocab)) json.WriteNumberValue(value);
                json.WriteEndArray();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliInputException($"cannot write {path}: {e.Message}");
        }
    }

    /// <summary>Reads and checks a dump: token ids inside the vocabulary, one row of exactly vocabulary size per token.</summary>
    private static (int[] Tokens, float[] Logits) ReadDump(string path, int vocab)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new CliInputException($"{path}: not JSON ({e.Message})");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("tokens", out var tokenArray) || tokenArray.ValueKind != JsonValueKind.Array
                || !root.TryGetProperty("logits", out var rows) || rows.ValueKind != JsonValueKind.Array)
                throw new CliInputException($"{path}: expected an object with arrays \"tokens\" and \"logits\"");
            var count = tokenArray.GetArrayLength();
            if (count == 0 || count > MaxTokens) throw new CliInputException($"{path}: {count} tokens; expected 1 to {MaxTokens}");
            if (rows.GetArrayLength() != count) throw new CliInputException($"{path}: {count} tokens but {rows.GetArrayLength()} rows of logits");

            var tokens = new int[count];
            var i = 0;
            foreach (var token in tokenArray.EnumerateArray())
            {
                if (token.ValueKind != JsonValueKind.Number || !token.TryGetInt32(out var id) || (uint)id >= (uint)vocab)
                    throw new CliInputException($"{path}: token {i} is not an id below the model's vocabulary of {vocab}");
                tokens[i++] = id;
            }

            var logits = new float[(long)count * vocab];
            var t = 0;
            foreach (var row in rows.EnumerateArray())
            {
                if (row.ValueKind != JsonValueKind.Array || row.GetArrayLength() != vocab)
                    throw new CliInputException($"{path}: row {t} of logits is not an array of {vocab} numbers (the model's vocabulary)");
                var j = 0;
                foreach (var value in row.EnumerateArray())
                {
                    if (value.ValueKind != JsonValueKind.Number || !value.TryGetSingle(out var f) || !float.IsFinite(f))
                        throw new CliInputException($"{path}: row {t}, entry {j} is not a finite number");
                    logits[(long)t * vocab + j++] = f;
                }

                t++;
            }

            return (tokens, logits);
        }
    }
}
