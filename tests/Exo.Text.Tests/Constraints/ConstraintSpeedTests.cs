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
        var random = new Random(7);

        // Requests one after another: the first meets every state cold, later ones reuse what earlier ones computed.
        var walkClock = new Stopwatch();
        var masks = 0;
        TokenConstraint? constraint = null;
        for (var walk = 0; walk < 4; walk++)
        {
            constraint?.Dispose();
            constraint = grammar.Start(vocabulary, ends, 120);
            while (!constraint.IsComplete && constraint.Accepted < 100)
            {
                Array.Fill(logits, 0f);
                walkClock.Start();
                constraint.Mask(logits);
                walkClock.Stop();
                masks++;
                var allowed = Enumerable.Range(0, logits.Length).Where(t => logits[t] == 0f && !ends.Contains(t)).ToArray();
                if (allowed.Length == 0) break;
                constraint.Accept(allowed[random.Next(allowed.Length)]);
            }
        }

        // The same state again: the cached mask.
        var warmClock = Stopwatch.StartNew();
        const int warmRounds = 200;
        for (var i = 0; i < warmRounds; i++) constraint!.Mask(logits);
        warmClock.Stop();

        var probes = Enumerable.Range(0, 4096).Select(_ => random.Next(vocabulary.Count)).ToArray();
        foreach (var t in probes) constraint!.Allows(t);
        var allowsClock = Stopwatch.StartNew();
        var yes = 0;
        const int allowsRounds = 250;
        for (var r = 0; r < allowsRounds; r++)
        {
            foreach (var t in probes) yes += constraint!.Allows(t) ? 1 : 0;
        }
        allowsClock.Stop();

        var perWalkMask = walkClock.Elapsed.TotalMicroseconds / masks;
        var warmMask = warmClock.Elapsed.TotalMicroseconds / warmRounds;
        var allowsNs = allowsClock.Elapsed.TotalNanoseconds / (allowsRounds * probes.Length);
        output.WriteLine($"{name} ({vocabulary.Count} tokens, trie {vocabulary.Trie.NodeCount} nodes): Mask {perWalkMask:0} µs a token over 4 requests' random walks, {warmMask:0.0} µs at a cached state; Allows {allowsNs:0} ns ({yes} allowed)");
        Assert.True(warmMask < 5_000 && allowsNs < 5_000);
    }
}
