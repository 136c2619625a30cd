using System.Text;
using Exo.Text.Constraints;
using Exo.Text.Tokenization;

namespace Exo.Text.Tests.Constraints;

/// <summary>What each token writes, per kind of tokenizer, agrees with the tokenizer's own decoding.</summary>
public sealed class TokenVocabularyTests
{
    private static Tokenizer Real(string name) => Tokenizer.FromModelDirectory(Path.Combine(RepositoryPaths.Shared, "realtok", name));

    private static string Written(TokenVocabulary vocabulary, int id) => Encoding.UTF8.GetString(vocabulary.Bytes(id));

    [Fact]
    public void ByteLevelTokensWriteTheirBytes()
    {
        var tokenizer = Tokenizer.FromModelDirectory(RepositoryPaths.ShippedModel);
        var vocabulary = TokenVocabulary.FromTokenizer(tokenizer);
        Assert.Equal(tokenizer.VocabSize, vocabulary.Count);
        foreach (var text in (string[])["{\"name\": \"Ada\", \"age\": 36}", " hello world", "naïve"])
        {
            var ids = tokenizer.Encode(text, addSpecialTokens: false);
            Assert.Equal(text, Encoding.UTF8.GetString(ids.SelectMany(id => vocabulary.Bytes(id).ToArray()).ToArray()));
        }
        Assert.True(vocabulary.Bytes(0).IsEmpty);   // <|endoftext|>
        Assert.True(vocabulary.Bytes(2).IsEmpty);   // <|im_end|>
        Assert.True(vocabulary.Bytes(-1).IsEmpty);
        Assert.True(vocabulary.Bytes(vocabulary.Count).IsEmpty);
    }

    [Fact]
    public void SentencePieceTokensWriteSpacesAndFallbackBytes()
    {
        var tokenizer = Real("tinyllama-1.1b-chat-v1.0");
        var vocabulary = TokenVocabulary.FromTokenizer(tokenizer);
        Assert.Equal([0x41], vocabulary.Bytes(tokenizer.TokenToId("<0x41>")!.Value).ToArray());
        Assert.Equal([0xE6], vocabulary.Bytes(tokenizer.TokenToId("<0xE6>")!.Value).ToArray());
        Assert.Equal(" the", Written(vocabulary, tokenizer.TokenToId("▁the")!.Value));
        Assert.True(vocabulary.Bytes(tokenizer.TokenToId("</s>")!.Value).IsEmpty);
        var ids = tokenizer.Encode("a {\"x\": 1} 日本", addSpecialTokens: false);
        Assert.Equal(" a {\"x\": 1} 日本", Encoding.UTF8.GetString(ids.SelectMany(id => vocabulary.Bytes(id).ToArray()).ToArray()));
    }

    [Fact]
    public void AddedTokensThatAreNotSpecialWriteTheirText()
    {
        var tokenizer = Real("qwen2.5-instruct");
        var vocabulary = TokenVocabulary.FromTokenizer(tokenizer);
        Assert.Equal("<tool_call>", Written(vocabulary, tokenizer.TokenToId("<tool_call>")!.Value));
        Assert.True(vocabulary.Bytes(tokenizer.TokenToId("<|im_end|>")!.Value).IsEmpty);
        Assert.Equal(" world", Written(vocabulary, tokenizer.TokenToId("Ġworld")!.Value));
    }

    [Theory]
    [InlineData("llama-3.2-instruct")]
    [InlineData("qwen2.5-instruct")]
    [InlineData("tinyllama-1.1b-chat-v1.0")]
    public void EveryByteHasASingleToken(string name)
    {
        var vocabulary = TokenVocabulary.FromTokenizer(Real(name));
        Assert.Equal(256, vocabulary.SingleBytes.Count);
    }
}
