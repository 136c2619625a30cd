using Exo.Text.Tokenization;

namespace Exo.Text.Tests.Tokenization;

public sealed class TokenizerBehaviourTests
{
    private static Tokenizer Real(string name) => Tokenizer.FromModelDirectory(Path.Combine(RepositoryPaths.Shared, "realtok", name));

    [Theory]
    [InlineData("llama-3.2-instruct")]
    [InlineData("tinyllama-1.1b-chat-v1.0")]
    public void IncrementalDecodingNeverSplitsACharacterAndMatchesFullDecode(string name)
    {
        var tokenizer = Real(name);
        const string text = "Hello 蓝牙耳机 🦙🚀 naïve — done.";
        var ids = tokenizer.Encode(text, addSpecialTokens: false);
        var decoder = tokenizer.CreateDecoder(skipSpecialTokens: true);
        var pieces = ids.Select(decoder.Add).Append(decoder.Flush()).ToList();
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD') || (p.Length > 0 && char.IsHighSurrogate(p[^1])));
        Assert.Equal(tokenizer.Decode(ids, skipSpecialTokens: true), string.Concat(pieces));
        Assert.Contains(pieces, p => p.Length == 0);
    }

    [Fact]
    public void SpecialTokenInfoReadsEosListsAndConfigs()
    {
        var tokenizer = Tokenizer.FromModelDirectory(Path.Combine(RepositoryPaths.Shared, "fixtures", "llama-tiny"));
        Assert.Equal("<|begin_of_text|>", tokenizer.SpecialTokens.BosToken);
        Assert.Equal(0, tokenizer.SpecialTokens.BosTokenId);
        Assert.Contains(4, tokenizer.SpecialTokens.StopTokenIds);
        Assert.Equal(4, tokenizer.SpecialTokens.EosTokenId);
    }

    [Fact]
    public void PossessiveQuantifiersBecomeAtomicGroups()
    {
        Assert.Equal(@"(?>\p{L}+)|(?>[a-z]*)x", SplitPattern.TranslatePossessive(@"\p{L}++|[a-z]*+x"));
        Assert.Equal(@"(?>(ab)?)c{1,3}", SplitPattern.TranslatePossessive(@"(ab)?+c{1,3}"));
    }

    [Theory]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"vocab\": {", "cannot read tokenizer file")]
    [InlineData("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "unsupported model type 'Unigram'")]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"merges\": []}}", "missing field 'vocab'")]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}", "not in the vocabulary")]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}", "has no valid id")]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Whatever\"}}", "unsupported pre_tokenizer type")]
    [InlineData("[]", "top level must be a JSON object")]
    public void BadTokenizerFilesAreClearErrors(string json, string expected)
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, json);
            var error = Assert.Throws<TokenizerFormatException>(() => Tokenizer.FromFile(path));
            Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MissingTokenizerFileIsAClearError()
    {
        var error = Assert.Throws<TokenizerFormatException>(() => Tokenizer.FromModelDirectory(Path.Combine(Path.GetTempPath(), "no-such-model-" + Guid.NewGuid())));
        Assert.Contains("tokenizer.json", error.Message, StringComparison.Ordinal);
    }
}

public sealed class MetaspaceTokenizerTests
{
    private const string Json = """
        {"added_tokens": [{"id": 0, "content": "<unk>", "special": true}],
         "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true},
         "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}]},
         "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
                   "vocab": {"<unk>": 0, "▁": 1, "h": 2, "i": 3, "▁h": 4, "▁hi": 5, "<0xC3>": 6, "<0xA9>": 7},
                   "merges": [["▁", "h"], ["▁h", "i"]]}}
        """;

    [Fact]
    public void MetaspaceSplitsAndByteFallbackRoundTrips()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, Json);
            var tokenizer = Tokenizer.FromFile(path);
            var ids = tokenizer.Encode("hi hé");
            Assert.Equal([5, 4, 6, 7], ids);
            Assert.Equal("hi hé", tokenizer.Decode(ids));
            // Neither character nor its UTF-8 bytes are in the vocabulary: one fused <unk>.
            Assert.Equal([1, 0], tokenizer.Encode("\u4E00\u4E01"));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
