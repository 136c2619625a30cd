using System.Diagnostics;
using Exo.Inference.Backends;
using Exo.Inference.Generation;
using Exo.Inference.Sampling;
using Exo.Text.Constraints;
using Exo.Text.Templates;
using Xunit.Abstractions;

namespace Exo.Inference.Tests.Engine;

/// <summary>Generation on the shipped model under JSON schemas: every output parses and validates.</summary>
public sealed class StructuredGenerationTests(ITestOutputHelper output)
{
    /// <summary>Generations per batched forward pass: one pass reads the weights once for all its rows.</summary>
    private const int Batch = 250;

    // On the CPU: its results are the same in a batch and alone, which the batch test counts on.
    private static readonly Lazy<LocalModel> Shipped = new(() => LocalModel.Load(RepositoryPaths.ShippedModel, new BackendOptions(BackendKind.Cpu)));

    private static int[] Prompt(LocalModel model, string schemaName) =>
        model.EncodeChat([new ChatMessage("user", $"Reply with a {schemaName} as JSON.")]);

    private static string Text(LocalModel model, IEnumerable<GeneratedToken> tokens) =>
        model.Tokenizer.Decode([.. tokens.Where(t => t.Finish != FinishReason.Stop).Select(t => t.Token)]);

    [Fact]
    public void AThousandGenerationsAllValidate()
    {
        var model = Shipped.Value;
        var schemas = JsonSchemas.Acceptance.Select(s => (s.Name, s.Schema, Grammar: OutputGrammar.Json(JsonSchemas.Element(s.Schema)))).ToArray();
        float[] temperatures = [0f, 0.7f, 1f, 1.5f];
        var requests = Enumerable.Range(0, 1000).Select(i =>
        {
            var (name, _, grammar) = schemas[i % schemas.Length];
            var sampling = new SamplingParameters { Temperature = temperatures[i / schemas.Length % temperatures.Length], TopP = i % 3 == 0 ? 0.9f : 1f, Seed = (ulong)i };
            return new GenerationJob(Prompt(model, name), sampling, 64 + i % 65, new StructuredOutput(grammar, model.Vocabulary));
        }).ToArray();
        var failures = new List<string>();
        var tokens = 0;
        var clock = Stopwatch.StartNew();
        for (var start = 0; start < requests.Length; start += Batch)
        {
            var results = model.Generator.GenerateBatch(requests[start..(start + Batch)], model.Special.StopTokenIds);
            for (var k = 0; k < results.Length; k++)
            {
                var (name, schema, _) = schemas[(start + k) % schemas.Length];
                tokens += results[k].Count;
                var text = Text(model, results[k]);
                if (JsonSchemas.Validate(schema, text) is { } error) failures.Add($"#{start + k} {name}: {text} -> {error}");
            }
        }
        output.WriteLine($"1000 constrained generations, {tokens} tokens, {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.True(failures.Count == 0, $"{failures.Count} invalid: " + string.Join("\n", failures.Take(5)));
    }

    [Fact]
    public void ABatchGeneratesWhatSingleGenerationsDo()
    {
        var model = Shipped.Value;
        var grammar = OutputGrammar.Json(JsonSchemas.Element(JsonSchemas.Acceptance[1].Schema));
        var requests = Enumerable.Range(0, 3).Select(i => new GenerationJob(Prompt(model, "score " + i), SamplingParameters.Greedy, 48,
            i == 1 ? null : new StructuredOutput(grammar, model.Vocabulary))).ToArray();
        var batch = model.Generator.GenerateBatch(requests, model.Special.StopTokenIds);
        for (var i = 0; i < requests.Length; i++)
        {
            var single = model.Generator.Generate(requests[i].Prompt, requests[i].Sampling, requests[i].MaxNewTokens, model.Special.StopTokenIds, requests[i].Output).ToList();
            Assert.Equal(single, batch[i]);
        }
    }
}
