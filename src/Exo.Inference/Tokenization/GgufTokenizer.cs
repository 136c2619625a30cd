using Exo.Inference.Weights;

namespace Exo.Inference.Tokenization;

/// <summary>
/// GGUF's embedded tokenizer (tokenizer.ggml.*) as the same pipeline tokenizer.json describes: "gpt2" is byte-level BPE
/// with merges and a named pre-tokenizer; "llama" is SentencePiece BPE, whose merges come from the pieces' scores.
/// </summary>
internal static class GgufTokenizer
{
    public const string Model = "tokenizer.ggml.model";
    public const string Pre = "tokenizer.ggml.pre";
    public const string Tokens = "tokenizer.ggml.tokens";
    public const string Scores = "tokenizer.ggml.scores";
    public const string TokenTypes = "tokenizer.ggml.token_type";
    public const string Merges = "tokenizer.ggml.merges";
    public const string BosId = "tokenizer.ggml.bos_token_id";
    public const string EosId = "tokenizer.ggml.eos_token_id";
    public const string EotId = "tokenizer.ggml.eot_token_id";
    public const string EomId = "tokenizer.ggml.eom_token_id";
    public const string UnknownId = "tokenizer.ggml.unknown_token_id";
    public const string PaddingId = "tokenizer.ggml.padding_token_id";
    public const string AddBos = "tokenizer.ggml.add_bos_token";
    public const string AddEos = "tokenizer.ggml.add_eos_token";
    public const string AddSpacePrefix = "tokenizer.ggml.add_space_prefix";
    public const string ChatTemplate = "tokenizer.chat_template";

    /// <summary>llama.cpp's token types.</summary>
    public enum TokenType
    {
        Normal = 1,
        Unknown = 2,
        Control = 3,
        UserDefined = 4,
        Unused = 5,
        Byte = 6,
    }

    private const string SpaceMark = "\u2581";

    /// <summary>
    /// llama.cpp's pre-tokenizer names for byte-level BPE: the split regex each stands for (null: GPT-2's own), whether
    /// text is NFC-normalized first, and whether a word already in the vocabulary skips the merges (Llama 3).
    /// </summary>
    public static readonly IReadOnlyList<(string Name, string? Regex, bool Nfc, bool IgnoreMerges)> PreTokenizers =
    [
        ("gpt-2", null, false, false),
        ("default", null, false, false),
        ("llama-bpe", @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", false, true),
        ("qwen2", @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", true, false),
    ];

    public static (TokenizerParts Parts, SpecialTokenInfo Special) Read(GgufMetadata m)
    {
        var kind = m.String(Model);
        var tokens = m.StringArray(Tokens);
        if (tokens.Length == 0) throw new TokenizerFormatException($"{Tokens} is empty");
        var types = m.Contains(TokenTypes) ? m.IntArray(TokenTypes) : Enumerable.Repeat((int)TokenType.Normal, tokens.Length).ToArray();
        if (types.Length != tokens.Length) throw new TokenizerFormatException($"{TokenTypes} has {types.Length} entries for {tokens.Length} tokens");

        var vocab = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (var id = 0; id < tokens.Length; id++) vocab.TryAdd(tokens[id], id);

        int? Id(string key)
        {
            if (m.OptionalInt(key) is not { } id) return null;
            return id < tokens.Length ? id : throw new TokenizerFormatException($"{key} {id} is outside the {tokens.Length}-token vocabulary");
        }

        var bos = Id(BosId);
        var eos = Id(EosId);
        var added = new List<AddedToken>();
        for (var id = 0; id < tokens.Length; id++)
        {
            var type = (TokenType)types[id];
            if (type is TokenType.Control or TokenType.Unknown or TokenType.UserDefined)
                added.Add(new AddedToken(id, tokens[id], Special: type != TokenType.UserDefined, false, false, false, false));
        }

        TokenizerParts parts;
        bool addBos;
        switch (kind)
        {
            case "gpt2":
                addBos = m.OptionalBool(AddBos) ?? false;
                parts = ByteLevel(m, vocab, added);
                break;
            case "llama":
                addBos = m.OptionalBool(AddBos) ?? true;
                parts = SentencePiece(m, tokens, types, vocab, added, Id(UnknownId));
                break;
            default:
                throw new TokenizerFormatException($"{Model} '{kind}' is not supported (gpt2 and llama are)");
        }

        var prefix = addBos && bos is { } b ? new[] { b } : [];
        var suffix = (m.OptionalBool(AddEos) ?? false) && eos is { } e ? new[] { e } : [];
        var stops = new HashSet<int>();
        foreach (var key in new[] { EosId, EotId, EomId })
        {
            if (Id(key) is { } id) stops.Add(id);
        }

        var special = new SpecialTokenInfo(bos is { } bi ? tokens[bi] : null, bos, eos is { } ei ? tokens[ei] : null, eos, stops);
        return (parts with { PrefixIds = prefix, SuffixIds = suffix }, special);
    }

    private static TokenizerParts ByteLevel(GgufMetadata m, Dictionary<string, int> vocab, List<AddedToken> added)
    {
        var pre = m.OptionalString(Pre) ?? "default";
        var known = PreTokenizers.FirstOrDefault(p => p.Name == pre);
        if (known.Name is null)
            throw new TokenizerFormatException($"{Pre} '{pre}' is not supported (supported: {string.Join(", ", PreTokenizers.Select(p => p.Name))})");
        IPreTokenizer preTokenizer = known.Regex is null
            ? new ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: true)
            : new SequencePreTokenizer([
                new SplitPreTokenizer(new SplitPattern(known.Regex, isRegex: true), SplitBehavior.Isolated, invert: false),
                new ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: false)]);

        var mergeStrings = m.Contains(Merges) ? m.StringArray(Merges) : [];
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
    private static TokenizerParts SentencePiece(GgufMetadata m, string[] tokens, int[] types, Dictionary<string, int> vocab,
        List<AddedToken> added, int? unknown)
    {
        var scores = m.FloatArray(Scores);
        if (scores.Length != tokens.Length) throw new TokenizerFormatException($"{Scores} has {scores.Length} entries for {tokens.Length} tokens");

        var byScore = Enumerable.Range(0, tokens.Length)
            .Where(id => (TokenType)types[id] is TokenType.Normal or TokenType.UserDefined && tokens[id].Length > 1)
            .OrderByDescending(id => scores[id]).ThenBy(id => id).ToArray();
        var merges = new List<(int, int, int)>();
        var ranks = new List<int>();
        var lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        for (var rank = 0; rank < byScore.Length; rank++)
        {
            var piece = tokens[byScore[rank]];
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

        var addSpace = m.OptionalBool(AddSpacePrefix) ?? true;
        INormalizer replace = new ReplaceNormalizer(" ", SpaceMark);
        var normalizer = addSpace ? new SequenceNormalizer([new PrependNormalizer(SpaceMark), replace]) : replace;
        List<IDecoder> decoders = [new ReplaceDecoder(SpaceMark, " "), new ByteFallbackDecoder(), new FuseDecoder()];
        if (addSpace) decoders.Add(new StripDecoder(' ', 1, 0));

        var model = new BpeModel(vocab, merges, unknown is { } u ? tokens[u] : null, fuseUnk: true, byteFallback: true, ignoreMerges: false, ranks);
        return new TokenizerParts(model, new Dictionary<string, int>(vocab, StringComparer.Ordinal), added,
            normalizer, null, new SequenceDecoder(decoders), [], []);
    }
}

/// <summary>Turns a Hugging Face folder's tokenizer.json and special tokens into GGUF's tokenizer.ggml.* metadata.</summary>
internal static class GgufTokenizerWriter
{
    public static void Write(string directory, int vocabSize, GgufWriter writer)
    {
        var path = Path.Combine(directory, "tokenizer.json");
        var json = SpecialTokenInfo.ReadOptionalJson(path) ?? throw new TokenizerFormatException($"{path}: missing");
        var tokenizer = Tokenizer.FromModelDirectory(directory);
        if (tokenizer.VocabSize > vocabSize)
            throw new TokenizerFormatException($"{path}: {tokenizer.VocabSize} tokens do not fit the model's vocabulary of {vocabSize}");

        var model = JsonRead.Property(json, "model", "tokenizer.json");
        var byteFallback = JsonRead.Bool(model, "byte_fallback", false);
        var tokens = new string[vocabSize];
        var types = new int[vocabSize];
        for (var id = 0; id < vocabSize; id++)
        {
            // Ids the tokenizer never produces still need a unique, unused entry: llama.cpp sizes its vocabulary by this list.
            tokens[id] = tokenizer.IdToToken(id) ?? $"[PAD{id}]";
            types[id] = (int)(tokenizer.IdToToken(id) is null ? GgufTokenizer.TokenType.Unused : GgufTokenizer.TokenType.Normal);
        }

        foreach (var token in tokenizer.AddedTokens)
            types[token.Id] = (int)(token.Special ? GgufTokenizer.TokenType.Control : GgufTokenizer.TokenType.UserDefined);

        var merges = JsonRead.Property(model, "merges", "BPE model").EnumerateArray()
            .Select(m => m.ValueKind == System.Text.Json.JsonValueKind.Array ? $"{m[0].GetString()} {m[1].GetString()}" : m.GetString()!)
            .ToArray();
        if (byteFallback)
        {
            writer.Set(GgufTokenizer.Model, "llama");
            for (var id = 0; id < vocabSize; id++)
            {
                if (tokens[id] is ['<', '0', 'x', _, _, '>']) types[id] = (int)GgufTokenizer.TokenType.Byte;
            }

            if (JsonRead.Optional(model, "unk_token")?.GetString() is { } unk && tokenizer.TokenToId(unk) is { } unkId)
            {
                types[unkId] = (int)GgufTokenizer.TokenType.Unknown;
                writer.Set(GgufTokenizer.UnknownId, (uint)unkId);
            }

            writer.Set(GgufTokenizer.Scores, Scores(tokenizer, tokens, merges));
            var normalizer = JsonRead.Optional(json, "normalizer")?.ToString() ?? "";
            writer.Set(GgufTokenizer.AddSpacePrefix, normalizer.Contains("Prepend", StringComparison.Ordinal));
        }
        else
        {
            writer.Set(GgufTokenizer.Model, "gpt2");
            writer.Set(GgufTokenizer.Pre, PreTokenizerName(json, path));
            writer.Set(GgufTokenizer.Merges, merges);
        }

        writer.Set(GgufTokenizer.Tokens, tokens);
        writer.Set(GgufTokenizer.TokenTypes, types);

        var special = tokenizer.SpecialTokens;
        var affixes = tokenizer.Encode("", addSpecialTokens: true);
        if (special.BosTokenId is { } bos) writer.Set(GgufTokenizer.BosId, (uint)bos);
        if (special.EosTokenId is { } eos)
        {
            writer.Set(GgufTokenizer.EosId, (uint)eos);
            // A second stop token (Llama 3's <|eot_id|> beside <|end_of_text|>) becomes llama.cpp's end-of-turn token.
            if (special.StopTokenIds.Where(id => id != eos).Order().FirstOrDefault(-1) is var eot and >= 0)
                writer.Set(GgufTokenizer.EotId, (uint)eot);
        }

        writer.Set(GgufTokenizer.AddBos, special.BosTokenId is { } b && affixes.FirstOrDefault(-1) == b);
        writer.Set(GgufTokenizer.AddEos, special.EosTokenId is { } e && affixes.LastOrDefault(-1) == e);
    }

    /// <summary>SentencePiece scores that reproduce the merge order: a piece made by an earlier merge scores higher.</summary>
    private static float[] Scores(Tokenizer tokenizer, string[] tokens, string[] merges)
    {
        var scores = new float[tokens.Length];
        Array.Fill(scores, -(float)merges.Length - 1);
        for (var rank = merges.Length - 1; rank >= 0; rank--)
        {
            if (tokenizer.TokenToId(merges[rank].Replace(" ", "", StringComparison.Ordinal)) is { } id) scores[id] = -rank;
        }

        return scores;
    }

    private static string PreTokenizerName(System.Text.Json.JsonElement json, string path)
    {
        var pre = JsonRead.Optional(json, "pre_tokenizer");
        if (pre is { } p && JsonRead.Optional(p, "type")?.GetString() == "ByteLevel" && JsonRead.Bool(p, "use_regex", true)) return "gpt-2";
        // Otherwise a Sequence of a regex Split and a ByteLevel without its own regex: llama.cpp knows the regex by name.
        var regex = pre is { } sequence && JsonRead.Optional(sequence, "pretokenizers") is { ValueKind: System.Text.Json.JsonValueKind.Array } steps
            ? steps.EnumerateArray()
                .Select(step => JsonRead.Optional(step, "pattern") is { } pattern ? JsonRead.Optional(pattern, "Regex")?.GetString() : null)
                .FirstOrDefault(r => r is not null)
            : null;
        var nfc = JsonRead.Optional(json, "normalizer") is { } n && JsonRead.Optional(n, "type")?.GetString() == "NFC";
        foreach (var (name, known, needsNfc, _) in GgufTokenizer.PreTokenizers)
        {
            if (known is not null && known == regex && needsNfc == nfc) return name;
        }

        throw new TokenizerFormatException($"{path}: its pre-tokenizer matches none llama.cpp knows by name ({string.Join(", ", GgufTokenizer.PreTokenizers.Select(t => t.Name))})");
    }
}
