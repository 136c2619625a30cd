using System.Text;
using Exo.Text.Constraints;
using Exo.Text.Tokenization;

namespace Exo.Text.Tests.Constraints;

/// <summary>
/// From the start, pick any allowed token at random until an end token: whatever the path, the text is JSON that
/// validates against the schema, over real vocabularies of each kind.
/// </summary>
public sealed class RandomWalkTests
{
    private const int MaxTokens = 120;

    public static TheoryData<string> Tokenizers => ["exo-tiny", "llama-3.2-instruct", "qwen2.5-instruct", "tinyllama-1.1b-chat-v1.0"];

    [Theory]
    [MemberData(nameof(Tokenizers))]
    public void RandomAllowedTokensAlwaysGiveValidJson(string name)
    {
        var tokenizer = name == "exo-tiny" ? Tokenizer.FromModelDirectory(RepositoryPaths.ShippedModel)
            : Tokenizer.FromModelDirectory(Path.Combine(RepositoryPaths.Shared, "realtok", name));
        var vocabulary = TokenVocabulary.FromTokenizer(tokenizer);
        var ends = tokenizer.SpecialTokens.StopTokenIds;
        Assert.NotEmpty(ends);
        var random = new Random(1234);
        var logits = new float[tokenizer.VocabSize];
        foreach (var (schemaName, schema) in JsonSchemas.Acceptance)
        {
            var grammar = OutputGrammar.Json(JsonSchemas.Element(schema));
            for (var walk = 0; walk < 3; walk++)
            {
                var constraint = grammar.Start(vocabulary, ends, MaxTokens);
                var ids = new List<int>();
                var bytes = new List<byte>();
                // The text always closes within the limit; the end token follows if a place is left for it.
                while (constraint.Accepted < MaxTokens)
                {
                    Array.Clear(logits);
                    constraint.Mask(logits);
                    var allowed = Enumerable.Range(0, logits.Length).Where(t => logits[t] == 0f).ToArray();
                    Assert.True(allowed.Length > 0, $"{name} {schemaName}: nothing allowed after {Encoding.UTF8.GetString([.. bytes])}");
                    // Favour the end once it is allowed, so outputs are not all as long as the budget.
                    var token = allowed.FirstOrDefault(ends.Contains, -1) is var end && end >= 0 && random.Next(2) == 0 ? end : allowed[random.Next(allowed.Length)];
                    Assert.True(constraint.Allows(token));
                    constraint.Accept(token);
                    if (ends.Contains(token)) break;
                    ids.Add(token);
                    bytes.AddRange(vocabulary.Bytes(token).ToArray());
                }
                Assert.True(constraint.CanEnd || constraint.IsComplete);
                var text = Encoding.UTF8.GetString([.. bytes]);
                Assert.Equal(text, tokenizer.Decode([.. ids]));
                Assert.True(JsonSchemas.Validate(schema, text) is null, $"{name} {schemaName}: {text}\n{JsonSchemas.Validate(schema, text)}");
            }
        }
    }
}
