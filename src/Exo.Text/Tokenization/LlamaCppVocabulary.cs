namespace Exo.Text.Tokenization;

/// <summary>
/// A tokenizer as llama.cpp describes it, apart from any file format (a GGUF file stores these values under
/// tokenizer.ggml.*; Exo.Inference reads and writes them there): "gpt2" is byte-level BPE with merges and a named
/// pre-tokenizer; "llama" is SentencePiece BPE, whose merges come from the pieces' scores. A null member is one the
/// file leaves out; <see cref="Tokenizer.FromLlamaCppVocabulary"/> applies llama.cpp's defaults to it.
/// </summary>
/// <param name="Model">"gpt2" or "llama".</param>
/// <param name="Tokens">Every token's text, by id.</param>
/// <param name="TokenTypes">Every token's <see cref="LlamaCppTokenType"/>, by id (null: all normal).</param>
/// <param name="Scores">Every token's SentencePiece score, by id ("llama" only).</param>
/// <param name="Merges">"left right" BPE merges, highest priority first ("gpt2" only).</param>
/// <param name="PreTokenizer">llama.cpp's name for the byte-level split regex ("gpt2" only; null: "default").</param>
/// <param name="UnknownId">The token for pieces the vocabulary lacks ("llama" only).</param>
public sealed partial record LlamaCppVocabulary(
    string Model,
    string[] Tokens,
    int[]? TokenTypes = null,
    float[]? Scores = null,
    string[]? Merges = null,
    string? PreTokenizer = null,
    int? BosId = null,
    int? EosId = null,
    int? EotId = null,
    int? EomId = null,
    int? UnknownId = null,
    bool? AddBos = null,
    bool? AddEos = null,
    bool? AddSpacePrefix = null)
{
    private const string SpaceMark = "\u2581";

    /// <summary>
    /// llama.cpp's pre-tokenizer names for byte-level BPE: the split regex each stands for (null: GPT-2's own), whether
    /// text is NFC-normalized first, and whether a word already in the vocabulary skips the merges (Llama 3).
    /// </summary>
    internal static readonly IReadOnlyList<(string Name, string? Regex, bool Nfc, bool IgnoreMerges)> PreTokenizers =
    [
        ("gpt-2", null, false, false),
        ("default", null, false, false),
        ("llama-bpe", @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", false, true),
        ("qwen2", @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", true, false),
    ];

    /// <summary>The same pipeline tokenizer.json describes, and the special tokens.</summary>
    internal (TokenizerParts Parts, SpecialTokenInfo Special) ToParts()
    {
        ArgumentNullException.ThrowIfNull(Model);
        ArgumentNullException.ThrowIfNull(Tokens);
        if (Tokens.Length == 0) throw new TokenizerFormatException("the vocabulary has no tokens");
        var types = TokenTypes ?? Enumerable.Repeat((int)LlamaCppTokenType.Normal, Tokens.Length).ToArray();
        if (types.Length != Tokens.Length) throw new TokenizerFormatException($"token types has {types.Length} entries for {Tokens.Length} tokens");

        var vocab = new Dictionary<string, int>(Tokens.Length, StringComparer.Ordinal);
        for (var id = 0; id < Tokens.Length; id++) vocab.TryAdd(Tokens[id], id);

        var bos = Id(BosId, "the BOS id");
        var eos = Id(EosId, "the EOS id");
        var added = new List<AddedToken>();
        for (var id = 0; id < Tokens.Length; id++)
        {
            var type = (LlamaCppTokenType)types[id];
            if (type is LlamaCppTokenType.Control or LlamaCppTokenType.Unknown or LlamaCppTokenType.UserDefined)
                added.Add(new AddedToken(id, Tokens[id], Special: type != LlamaCppTokenType.UserDefined, false, false, false, false));
        }

        TokenizerParts parts;
        bool addBos;
        switch (Model)
        {
            case "gpt2":
                addBos = AddBos ?? false;
                parts = ByteLevel(vocab, added);
                break;
            case "llama":
                addBos = AddBos ?? true;
                parts = SentencePiece(types, vocab, added, Id(UnknownId, "the unknown-token id"));
                break;
            default:
                throw new TokenizerFormatException($"tokenizer model '{Model}' is not supported (gpt2 and llama are)");
        }

        var prefix = addBos && bos is { } b ? new[] { b } : [];
        var suffix = (AddEos ?? false) && eos is { } e ? new[] { e } : [];
        var stops = new HashSet<int>();
        foreach (var (id, name) in new[] { (EosId, "the EOS id"), (EotId, "the end-of-turn id"), (EomId, "the end-of-message id") })
        {
            if (Id(id, name) is { } stop) stops.Add(stop);
        }

        var special = new SpecialTokenInfo(bos is { } bi ? Tokens[bi] : null, bos, eos is { } ei ? Tokens[ei] : null, eos, stops);
        return (parts with { PrefixIds = prefix, SuffixIds = suffix }, special);
    }

    private int? Id(int? id, string name) => id is not { } value || (value >= 0 && value < Tokens.Length)
        ? id
        : throw new TokenizerFormatException($"{name} {value} is outside the {Tokens.Length}-token vocabulary");

    private TokenizerParts ByteLevel(Dictionary<string, int> vocab, List<AddedToken> added)
    {
        var pre = PreTokenizer ?? "default";
        var known = PreTokenizers.FirstOrDefault(p => p.Name == pre);
        if (known.Name is null)
            throw new TokenizerFormatException($"pre-tokenizer '{pre}' is not supported (supported: {string.Join(", ", PreTokenizers.Select(p => p.Name))})");
        IPreTokenizer preTokenizer = known.Regex is null
            ? new ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: true)
            : new SequencePreTokenizer([
                new SplitPreTokenizer(new SplitPattern(known.Regex, isRegex: true), SplitBehavior.Isolated, invert: false),
                new ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: false)]);

        var mergeStrings = Merges ?? [];
        var merges = new List<(int, int, int)>(mergeStrings.Length);
        foreach (var merge in mergeStrings)
        {
            var split = merge.Length < 3 ? -1 : merge.IndexOf(' ', 1);
            if (split <= 0 || split == merge.Length - 1
                || !vocab.TryGetValue(merge[..split], out var left) || !vocab.TryGetValue(merge[(split + 1)..], out var right)
                || !vocab.TryGetValue(string.Concat(merge.AsSpan(0, split), merge.AsSpan(split + 1)), out var merged))
            {
                throw new TokenizerFormatException($"merge {merges.Count} ('{merge}') is not two vocabulary tokens that make a third");
            }

            merges.Add((left, right, merged));
        }

        var model = new BpeModel(vocab, merges, null, false, false, known.IgnoreMerges);
        return new TokenizerParts(model, new Dictionary<string, int>(vocab, StringComparer.Ordinal), added,
            known.Nfc ? new NfcNormalizer() : null, preTokenizer, new ByteLevelDecoder(), [], []);
    }

    /// <summary>
    /// SentencePiece BPE: merging the adjacent pair whose joined piece has the highest score, leftmost on ties. Every
    /// way of splitting a piece into two pieces becomes a merge ranked by that piece's score.
    /// </summary>
    private TokenizerParts SentencePiece(int[] types, Dictionary<string, int> vocab, List<AddedToken> added, int? unknown)
    {
        var scores = Scores ?? throw new TokenizerFormatException("a SentencePiece (llama) vocabulary needs scores");
        if (scores.Length != Tokens.Length) throw new TokenizerFormatException($"scores has {scores.Length} entries for {Tokens.Length} tokens");

        var byScore = Enumerable.Range(0, Tokens.Length)
            .Where(id => (LlamaCppTokenType)types[id] is LlamaCppTokenType.Normal or LlamaCppTokenType.UserDefined && Tokens[id].Length > 1)
            .OrderByDescending(id => scores[id]).ThenBy(id => id).ToArray();
        var merges = new List<(int, int, int)>();
        var ranks = new List<int>();
        var lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        for (var rank = 0; rank < byScore.Length; rank++)
        {
            var piece = Tokens[byScore[rank]];
            for (var split = 1; split < piece.Length; split++)
            {
                if (char.IsLowSurrogate(piece[split])) continue;
                if (lookup.TryGetValue(piece.AsSpan(0, split), out var left) && lookup.TryGetValue(piece.AsSpan(split), out var right))
                {
                    merges.Add((left, right, byScore[rank]));
                    ranks.Add(rank);
                }
            }
        }

        var addSpace = AddSpacePrefix ?? true;
        INormalizer replace = new ReplaceNormalizer(" ", SpaceMark);
        var normalizer = addSpace ? new SequenceNormalizer([new PrependNormalizer(SpaceMark), replace]) : replace;
        List<IDecoder> decoders = [new ReplaceDecoder(SpaceMark, " "), new ByteFallbackDecoder(), new FuseDecoder()];
        if (addSpace) decoders.Add(new StripDecoder(' ', 1, 0));

        var model = new BpeModel(vocab, merges, unknown is { } u ? Tokens[u] : null, fuseUnk: true, byteFallback: true, ignoreMerges: false, ranks);
        return new TokenizerParts(model, new Dictionary<string, int>(vocab, StringComparer.Ordinal), added,
            normalizer, null, new SequenceDecoder(decoders), [], []);
    }
}

/// <summary>llama.cpp's token types (<see cref="LlamaCppVocabulary.TokenTypes"/>).</summary>
public enum LlamaCppTokenType
{
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}
