using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Exo.Inference.Backends;
using Exo.Inference.Generation;
using Exo.Inference.Sampling;
using Exo.Text.Constraints;
using Exo.Text.Templates;

namespace Exo.Cli.Commands;

/// <summary>
/// `exo bench --json-schema FILE`: decode speed with a json_schema constraint beside the same model's unconstrained
/// decode, greedy and at temperature 0.8, in one run. Rounds interleave and the best of each is kept, since other work
/// on the machine only ever slows a round down. Each generation is at most <c>--tg</c> tokens long.
/// </summary>
internal static class ConstrainedDecodeBench
{
    private const int Rounds = 3;
    private const int Generations = 12;
    private const long MaxSchemaBytes = 1 << 20;

    public static void Run(string modelPath, FileInfo schemaFile, int maxTokens, BackendOptions backend, TextWriter output)
    {
        // A rate needs two tokens: it is timed from the first token to the last.
        if (maxTokens < 2) throw new CliInputException($"--json-schema needs --tg of at least 2, not {maxTokens}");
        var grammar = Grammar(schemaFile);
        using var model = LocalModel.Load(modelPath, backend);
        var prompt = model.EncodeChat([new ChatMessage("user", "Reply with JSON.")]);
        var structured = new StructuredOutput(grammar, model.Vocabulary);
        try
        {
            Measure(model, prompt, structured, SamplingParameters.Greedy, maxTokens); // warm up: code, caches, the grammar's automaton
        }
        catch (GrammarException e)
        {
            throw new CliInputException($"--json-schema with --tg {maxTokens}: {e.Message} (raise --tg)");
        }

        foreach (var temperature in (float[])[0f, 0.8f])
        {
            var sampling = new SamplingParameters { Temperature = temperature };
            double free = 0, constrained = 0;
            for (var round = 0; round < Rounds; round++)
            {
                free = Math.Max(free, Measure(model, prompt, null, sampling, maxTokens));
                constrained = Math.Max(constrained, Measure(model, prompt, structured, sampling, maxTokens));
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"decode at temperature {temperature}: {free:F1} tok/s unconstrained, {constrained:F1} tok/s with the json_schema ({(constrained / free - 1) * 100:+0.0;-0.0} %)"));
            output.Flush();
        }
    }

    private static OutputGrammar Grammar(FileInfo file)
    {
        if (!file.Exists) throw new CliInputException($"--json-schema: {file.FullName} does not exist");
        if (file.Length > MaxSchemaBytes) throw new CliInputException($"--json-schema: {file.Name} is {file.Length} bytes, more than the {MaxSchemaBytes} a schema may be");
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(file.FullName));
            return OutputGrammar.Json(document.RootElement.Clone());
        }
        catch (JsonException e)
        {
            throw new CliInputException($"--json-schema: {file.Name} is not JSON: {e.Message}");
        }
        catch (GrammarException e)
        {
            throw new CliInputException($"--json-schema: {file.Name}: {e.Message}");
        }
    }

    /// <summary>Decode tokens per second over several generations, each timed from its first token to its last.</summary>
    private static double Measure(LocalModel model, int[] prompt, StructuredOutput? structured, SamplingParameters sampling, int maxTokens)
    {
        var tokens = 0;
        var seconds = 0.0;
        // Unconstrained runs ignore the stop tokens so that every generation decodes its full length.
        var ends = structured is null ? new HashSet<int>() : model.Special.StopTokenIds;
        for (var seed = 0; seed < Generations; seed++)
        {
            var clock = new Stopwatch();
            var count = 0;
            foreach (var _ in model.Generator.Generate(prompt, sampling with { Seed = (ulong)seed }, maxTokens, ends, structured))
            {
                if (count++ == 0) clock.Start();
            }

            tokens += Math.Max(0, count - 1);
            seconds += clock.Elapsed.TotalSeconds;
        }

        return seconds > 0 ? tokens / seconds : 0;
    }
}
