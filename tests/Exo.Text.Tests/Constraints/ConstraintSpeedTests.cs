using System.Diagnostics;
using Exo.Text.Constraints;
using Exo.Text.Tokenization;
using Xunit.Abstractions;

namespace Exo.Text.Tests.Constraints;

/// <summary>How long masking and checking take on the shipped vocabulary and on Llama 3's 128K one (printed; loose bounds).</summary>
public sealed class ConstraintSpeedTests(ITestOutputHelper output)
{
    public static TheoryData<string> Vocabularies => ["exo-tiny", "llama-3.2-instruct"];

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void MaskAndAllowsAreFast(string name)
    {
        var tokenizer = Tokenizer.FromModelDirectory(name == "exo-tiny" ? RepositoryPaths.ShippedModel : Path.Combine(RepositoryPaths.Shared, "realtok", name));
        var vocabulary = TokenVocabulary.FromTokenizer(tokenizer);
        var ends = tokenizer.SpecialTokens.StopTokenIds;
        var grammar = OutputGrammar.Json(JsonSchemas.Element(JsonSchemas.Acceptance[0].Schema));
        var logits = new float[tokenizer.VocabSize];

        // Requests one after another, picking random allowed tokens: the first meets every state cold, later ones
        // reuse the automaton and masks that earlier ones built.
        var random = new Random(7);
        var perRequest = new double[4];
        for (var request = 0; request < perRequest.Length; request++)
        {
            using var walk = grammar.Start(vocabulary, ends, 120);
            var clock = new Stopwatch();
            var masks = 0;
            while (!walk.IsComplete && walk.Accepted < 100)
            {
                Array.Fill(logits, 0f);
                clock.Start();
                walk.Mask(logits);
                clock.Stop();
                masks++;
                var allowed = Enumerable.Range(0, logits.Length).Where(t => logits[t] == 0f && !ends.Contains(t)).ToArray();
                if (allowed.Length == 0) break;
                walk.Accept(allowed[random.Next(allowed.Length)]);
            }
            perRequest[request] = clock.Elapsed.TotalMicroseconds / masks;
        }

        // Inside a string, where nearly every token is allowed: the trie walk (a state's first mask, or any mask once
        // the token budget binds), the cached mask, and Allows.
        var prefix = tokenizer.Encode("{\"name\": \"Ad", addSpecialTokens: false);
        var engine = new ConstraintEngine(grammar.Grammar, vocabulary, (vocabulary.Count + 63) / 64);
        var config = prefix.Aggregate(engine.Start, engine.After);
        var bits = new ulong[(vocabulary.Count + 63) / 64];
        for (var i = 0; i < 5; i++) engine.Allowed(config, 0, bits);
        var walkClock = Stopwatch.StartNew();
        for (var i = 0; i < 20; i++) engine.Allowed(config, 0, bits);
        var trieWalk = walkClock.Elapsed.TotalMicroseconds / 20;

        using var constraint = grammar.Start(vocabulary, ends, 4096);
        foreach (var t in prefix) constraint.Accept(t);
        // Warm up, and give the JIT time to replace the first, unoptimized code of the small methods.
        var probes = Enumerable.Range(0, 4096).Select(_ => random.Next(vocabulary.Count)).ToArray();
        for (var i = 0; i < 100; i++)
        {
            constraint.Mask(logits);
            foreach (var t in probes) constraint.Allows(t);
        }
        Thread.Sleep(500);
        var maskClock = Stopwatch.StartNew();
        for (var i = 0; i < 200; i++) constraint.Mask(logits);
        var cachedMask = maskClock.Elapsed.TotalMicroseconds / 200;

        var yes = probes.Count(constraint.Allows);
        var allowsClock = Stopwatch.StartNew();
        for (var r = 0; r < 100; r++)
        {
            foreach (var t in probes) constraint.Allows(t);
        }
        var allows = allowsClock.Elapsed.TotalNanoseconds / (100 * probes.Length);

        output.WriteLine($"{name} ({vocabulary.Count} tokens, trie of {vocabulary.Trie.NodeCount} nodes): Mask a token over random walks " +
            $"{perRequest[0]:0} µs (first request, cold), {perRequest[1..].Average():0} µs (later requests); in a string: trie walk {trieWalk:0} µs, " +
            $"cached mask {cachedMask:0.0} µs; Allows {allows:0} ns ({yes} of {probes.Length} random tokens allowed)");
        Assert.True(cachedMask < 2_000 && allows < 2_000);
    }
}
