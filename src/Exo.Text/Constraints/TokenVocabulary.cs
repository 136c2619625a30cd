using Exo.Text.Tokenization;

namespace Exo.Text.Constraints;

/// <summary>
/// The bytes each token id writes, with a trie of them for masking. Special and control tokens (BOS, EOS, padding,
/// chat markers) write nothing a grammar can use; added tokens that are not special write their text. Built once per
/// model and shared: immutable and thread-safe.
/// </summary>
public sealed class TokenVocabulary
{
    private readonly byte[] _bytes;
    private readonly int[] _offsets;    // token t writes _bytes[_offsets[t] .. _offsets[t + 1])

    private TokenVocabulary(IReadOnlyList<byte[]?> tokens)
    {
        _offsets = new int[tokens.Count + 1];
        for (var t = 0; t < tokens.Count; t++) _offsets[t + 1] = _offsets[t] + (tokens[t]?.Length ?? 0);
        _bytes = new byte[_offsets[^1]];
        var singles = default(ByteSet);
        for (var t = 0; t < tokens.Count; t++)
        {
            tokens[t]?.CopyTo(_bytes, _offsets[t]);
            if (tokens[t] is [var only]) singles = singles.With(only);
        }
        SingleBytes = singles;
        Trie = new TokenTrie(tokens);
    }

    /// <summary>Token ids run from 0 to Count - 1.</summary>
    public int Count => _offsets.Length - 1;

    /// <summary>The bytes that some token writes on its own.</summary>
    internal ByteSet SingleBytes { get; }

    internal TokenTrie Trie { get; }

    public static TokenVocabulary FromTokenizer(Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var tokens = new byte[]?[tokenizer.VocabSize];
        for (var id = 0; id < tokens.Length; id++) tokens[id] = tokenizer.WrittenBytes(id);
        return new TokenVocabulary(tokens);
    }

    /// <summary>A vocabulary from each token's bytes; null or empty for a token that writes nothing.</summary>
    public static TokenVocabulary FromTokenBytes(IReadOnlyList<byte[]?> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        return new TokenVocabulary(tokens);
    }

    /// <summary>What token <paramref name="token"/> writes; empty for a special token or an id outside the vocabulary.</summary>
    public ReadOnlySpan<byte> Bytes(int token) =>
        (uint)token < (uint)Count ? _bytes.AsSpan(_offsets[token], _offsets[token + 1] - _offsets[token]) : [];
}
