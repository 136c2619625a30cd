using System.Text;
using Exo.Text.Constraints;
using static Exo.Text.Tests.Constraints.GrammarText;

namespace Exo.Text.Tests.Constraints;

/// <summary>A constraint over a small vocabulary: token 0 ends, tokens 1..256 write one byte each, the rest a few bytes.</summary>
public sealed class TokenConstraintTests
{
    private const int End = 0;
    private static readonly string[] Words = ["{\"a\":", "\"}", "12", "{\"", "a\": 3}"];
    private static readonly TokenVocabulary Vocabulary = TokenVocabulary.FromTokenBytes(
        [null, .. Enumerable.Range(0, 256).Select(b => new[] { (byte)b }), .. Words.Select(Encoding.UTF8.GetBytes)]);
    private static readonly HashSet<int> Ends = [End];

    private static int Byte(char c) => 1 + c;

    private static int Word(string word) => 257 + Array.IndexOf(Words, word);

    private static TokenConstraint Start(string schema, int maxTokens = 100) => Schema(schema).Start(Vocabulary, Ends, maxTokens);

    private const string IntegerA = """{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}""";

    [Fact]
    public void FollowsTheGrammarToTheEnd()
    {
        var constraint = Start(IntegerA);
        Assert.False(constraint.Allows(End));
        Assert.False(constraint.Allows(Byte('[')));
        Assert.False(constraint.Allows(Word("{\"")) && !constraint.Allows(Word("{\"a\":")));
        constraint.Accept(Word("{\"a\":"));
        Assert.True(constraint.Allows(Word("12")));
        Assert.False(constraint.Allows(Word("\"}")));
        constraint.Accept(Word("12"));
        Assert.False(constraint.CanEnd);
        Assert.Throws<InvalidOperationException>(() => constraint.Accept(Byte('x')));
        constraint.Accept(Byte('}'));
        Assert.True(constraint.CanEnd);
        Assert.True(constraint.IsComplete);
        var logits = new float[Vocabulary.Count + 5];
        constraint.Mask(logits);
        Assert.Equal([End], Enumerable.Range(0, logits.Length).Where(t => logits[t] == 0f));
        constraint.Accept(End);
        Assert.Equal(4, constraint.Accepted);
        Assert.False(constraint.Allows(End));
        Assert.Throws<InvalidOperationException>(() => constraint.Mask(logits));
    }

    [Fact]
    public void MaskAgreesWithAllows()
    {
        var constraint = Start(IntegerA);
        foreach (var token in (int[])[Byte('{'), Byte(' '), Byte('"'), Byte('a'), Byte('"'), Byte(':'), Byte('-'), Byte('4'), Byte(' ')])
        {
            var logits = new float[Vocabulary.Count];
            constraint.Mask(logits);
            for (var t = 0; t < logits.Length; t++) Assert.Equal(constraint.Allows(t), logits[t] == 0f);
            constraint.Accept(token);
        }
    }

    [Fact]
    public void ANumberMayEndOrGoOn()
    {
        var constraint = Start("""{"type": "integer"}""");
        constraint.Accept(Byte('1'));
        Assert.True(constraint.CanEnd);
        Assert.False(constraint.IsComplete);
        Assert.True(constraint.Allows(Byte('2')));
        Assert.True(constraint.Allows(End));
    }

    [Fact]
    public void TheTokenBudgetClosesTheOutputInTime()
    {
        var shortest = CostAfter(Schema(IntegerA), "");
        var constraint = Start(IntegerA, maxTokens: shortest + 1);
        // With one token to spare the model may open a string of whitespace, but never more than the budget allows.
        var text = new StringBuilder();
        while (!constraint.IsComplete && constraint.Accepted < constraint.MaxTokens)
        {
            var logits = new float[Vocabulary.Count];
            constraint.Mask(logits);
            var pick = Enumerable.Range(0, logits.Length).Last(t => logits[t] == 0f);
            text.Append(Encoding.UTF8.GetString(Vocabulary.Bytes(pick)));
            constraint.Accept(pick);
        }
        Assert.True(Matches(Schema(IntegerA), text.ToString()), text.ToString());
        Assert.True(constraint.Accepted <= shortest + 1);
    }

    [Fact]
    public void StartRefusesATokenLimitTooSmallForAnyOutput()
    {
        var error = Assert.Throws<GrammarException>(() => Start(IntegerA, maxTokens: 6));
        Assert.Contains("max_tokens is 6", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StartRefusesAVocabularyThatCannotWriteABytePerToken()
    {
        var vocabulary = TokenVocabulary.FromTokenBytes([null, "{}"u8.ToArray()]);
        Assert.Throws<GrammarException>(() => OutputGrammar.Json(null).Start(vocabulary, Ends, 10));
    }
}
