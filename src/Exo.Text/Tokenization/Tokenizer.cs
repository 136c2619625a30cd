using System.Text.Json;

namespace Exo.Text.Tokenization;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> BPE tokenizer (byte-level as in Llama 3 and Qwen, or SentencePiece-style
/// with byte fallback as in Llama 2 and Mistral), following the pipeline of the <c>tokenizers</c> library:
/// added tokens, normalizer, pre-tokenizer, BPE model, post-processor; and on the way back the decoder.
/// Thread-safe after construction.
/// </summary>
public sealed class Tokenizer
{
    private readonly BpeModel _model;
    private readonly INormalizer? _normalizer;
    private readonly IPreTokenizer? _preTokenizer;
    private readonly IDecoder? _decoder;
    private readonly AddedTokenMatcher _addedMatcher;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly string?[] _idToToken;
    private readonly bool[] _isSpecial;
    private readonly int[] _prefixIds;
    private readonly int[] _suffixIds;

    private Tokenizer(TokenizerParts parts)
    {
        _model = parts.Model;
        _normalizer = parts.Normalizer;
        _preTokenizer = parts.PreTokenizer;
        _decoder = parts.Decoder;
        _addedMatcher = new AddedTokenMatcher(parts.AddedTokens);
        _tokenToId = parts.Vocab;
        _prefixIds = parts.PrefixIds;
        _suffixIds = parts.SuffixIds;
        AddedTokens = parts.AddedTokens;

        var size = 0;
        foreach (var id in parts.Vocab.Values)
        {
            size = Math.Max(size, id + 1);
        }
        foreach (var token in parts.AddedTokens)
        {
            size = Math.Max(size, token.Id + 1);
        }
        _idToToken = new string?[size];
        _isSpecial = new bool[size];
        foreach (var (token, id) in parts.Vocab)
        {
            _idToToken[id] = token;
        }
        foreach (var token in parts.AddedTokens)
        {
            _idToToken[token.Id] = token.Content;
            _isSpecial[token.Id] = token.Special;
            _tokenToId[token.Content] = token.Id;
        }
        LongestToken = _idToToken.Max(t => t?.Length ?? 0);
        SpecialTokens = SpecialTokenInfo.Empty;
    }

    /// <summary>
    /// The most characters of one token's vocabulary string. A token stands for at most this many characters of
    /// normalized text, so a text far longer than context × this cannot fit the context, whatever it says.
    /// </summary>
    public int LongestToken { get; }

    /// <summary>One more than the largest token id, added tokens included.</summary>
    public int VocabSize => _idToToken.Length;

    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>BOS/EOS tokens and the ids that end generation, from the model folder's configuration files.</summary>
    public SpecialTokenInfo SpecialTokens { get; private set; }

    public static Tokenizer FromFile(string tokenizerJsonPath) => new(TokenizerJsonReader.Read(tokenizerJsonPath));

    /// <summary>The tokenizer llama.cpp describes (what a GGUF file embeds as tokenizer.ggml.*), with its special tokens.</summary>
    public static Tokenizer FromLlamaCppVocabulary(LlamaCppVocabulary vocabulary)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        var (parts, special) = vocabulary.ToParts();
        return new Tokenizer(parts) { SpecialTokens = special };
    }

    /// <summary>Loads <c>tokenizer.json</c> and the special-token settings of tokenizer_config.json, generation_config.json and config.json.</summary>
    public static Tokenizer FromModelDirectory(string directory)
    {
        var tokenizer = FromFile(Path.Combine(directory, "tokenizer.json"));
        tokenizer.SpecialTokens = SpecialTokenInfo.FromModelDirectory(directory, tokenizer);
        return tokenizer;
    }

    /// <summary>
    /// The bytes token <paramref name="id"/> adds to decoded text after other tokens; null for a special token or an
    /// unused id, which write no text of their own.
    /// </summary>
    internal byte[]? WrittenBytes(int id)
    {
        var token = IdToToken(id);
        return token is null || _isSpecial[id] || _decoder is null ? null : TokenBytes.Of(_decoder, token);
    }

    public int? TokenToId(string token) => _tokenToId.TryGetValue(token, out var id) ? id : null;

    public string? IdToToken(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id] : null;


    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens)
        {
            ids.AddRange(_prefixIds);
        }
        var pieces = new List<string>();
        var atStart = true;
        foreach (var (segment, token) in _addedMatcher.Split(text))
        {
            if (token is not null)
            {
                ids.Add(token.Id);
            }
            else
            {
                EncodePlain(segment, atStart, pieces, ids);
            }
            atStart = false;
        }
        if (addSpecialTokens)
        {
            ids.AddRange(_suffixIds);
        }
        return [.. ids];
    }

    private void EncodePlain(string text, bool atStart, List<string> pieces, List<int> ids)
    {
        var normalized = _normalizer?.Normalize(text) ?? text;
        if (normalized.Length == 0)
        {
            return;
        }
        pieces.Clear();
        pieces.Add(normalized);
        _preTokenizer?.PreTokenize(pieces, atStart);
        foreach (var piece in pieces)
        {
            if (piece.Length > 0)
            {
                _model.Encode(piece, ids);
            }
        }
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var tokens = new List<string>(ids.Length);
        foreach (var id in ids)
        {
            var token = IdToToken(id);
            if (token is null || (skipSpecialTokens && _isSpecial[id]))
            {
                continue;
            }
            tokens.Add(token);
        }
        return _decoder is null ? string.Join(' ', tokens) : string.Concat(_decoder.DecodeChain(tokens));
    }

    /// <summary>A decoder for a stream of generated ids that only ever returns whole characters.</summary>
    public IncrementalDecoder CreateDecoder(bool skipSpecialTokens) => new(this, skipSpecialTokens);
}
