using System.Text.Json;

namespace Exo.Text.Tokenization;

public sealed partial record LlamaCppVocabulary
{
    /// <summary>
    /// A Hugging Face folder's tokenizer.json and special tokens as llama.cpp describes them, padded to the model's
    /// vocabulary of <paramref name="vocabSize"/> tokens: byte-fallback BPE becomes "llama", byte-level BPE "gpt2".
    /// </summary>
    public static LlamaCppVocabulary FromModelDirectory(string directory, int vocabSize)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
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
            types[id] = (int)(tokenizer.IdToToken(id) is null ? LlamaCppTokenType.Unused : LlamaCppTokenType.Normal);
        }

        foreach (var token in tokenizer.AddedTokens)
            types[token.Id] = (int)(token.Special ? LlamaCppTokenType.Control : LlamaCppTokenType.UserDefined);

        var merges = JsonRead.Property(model, "merges", "BPE model").EnumerateArray()
            .Select(m => m.ValueKind == JsonValueKind.Array ? $"{m[0].GetString()} {m[1].GetString()}" : m.GetString()!)
            .ToArray();
        var special = tokenizer.SpecialTokens;
        var affixes = tokenizer.Encode("", addSpecialTokens: true);
        // A second stop token (Llama 3's <|eot_id|> beside <|end_of_text|>) becomes llama.cpp's end-of-turn token.
        int? eot = special.EosTokenId is { } eos && special.StopTokenIds.Where(id => id != eos).Order().FirstOrDefault(-1) is var stop and >= 0
            ? stop
            : null;
        var vocabulary = new LlamaCppVocabulary("gpt2", tokens, types,
            BosId: special.BosTokenId,
            EosId: special.EosTokenId,
            EotId: eot,
            AddBos: special.BosTokenId is { } b && affixes.FirstOrDefault(-1) == b,
            AddEos: special.EosTokenId is { } e && affixes.LastOrDefault(-1) == e);
        if (!byteFallback) return vocabulary with { Merges = merges, PreTokenizer = PreTokenizerName(json, path) };

        for (var id = 0; id < vocabSize; id++)
        {
            if (tokens[id] is ['<', '0', 'x', _, _, '>']) types[id] = (int)LlamaCppTokenType.Byte;
        }

        int? unknown = null;
        if (JsonRead.Optional(model, "unk_token")?.GetString() is { } unk && tokenizer.TokenToId(unk) is { } unkId)
        {
            types[unkId] = (int)LlamaCppTokenType.Unknown;
            unknown = unkId;
        }

        var normalizer = JsonRead.Optional(json, "normalizer")?.ToString() ?? "";
        return vocabulary with
        {
            Model = "llama",
            Scores = MergeOrderScores(tokenizer, tokens, merges),
            UnknownId = unknown,
            AddSpacePrefix = normalizer.Contains("Prepend", StringComparison.Ordinal),
        };
    }

    /// <summary>SentencePiece scores that reproduce the merge order: a piece made by an earlier merge scores higher.</summary>
    private static float[] MergeOrderScores(Tokenizer tokenizer, string[] tokens, string[] merges)
    {
        var scores = new float[tokens.Length];
        Array.Fill(scores, -(float)merges.Length - 1);
        for (var rank = merges.Length - 1; rank >= 0; rank--)
        {
            if (tokenizer.TokenToId(merges[rank].Replace(" ", "", StringComparison.Ordinal)) is { } id) scores[id] = -rank;
        }

        return scores;
    }

    private static string PreTokenizerName(JsonElement json, string path)
    {
        var pre = JsonRead.Optional(json, "pre_tokenizer");
        if (pre is { } p && JsonRead.Optional(p, "type")?.GetString() == "ByteLevel" && JsonRead.Bool(p, "use_regex", true)) return "gpt-2";
        // Otherwise a Sequence of a regex Split and a ByteLevel without its own regex: llama.cpp knows the regex by name.
        var regex = pre is { } sequence && JsonRead.Optional(sequence, "pretokenizers") is { ValueKind: JsonValueKind.Array } steps
            ? steps.EnumerateArray()
                .Select(step => JsonRead.Optional(step, "pattern") is { } pattern ? JsonRead.Optional(pattern, "Regex")?.GetString() : null)
                .FirstOrDefault(r => r is not null)
            : null;
        var nfc = JsonRead.Optional(json, "normalizer") is { } n && JsonRead.Optional(n, "type")?.GetString() == "NFC";
        foreach (var (name, known, needsNfc, _) in PreTokenizers)
        {
            if (known is not null && known == regex && needsNfc == nfc) return name;
        }

        throw new TokenizerFormatException($"{path}: its pre-tokenizer matches none llama.cpp knows by name ({string.Join(", ", PreTokenizers.Select(t => t.Name))})");
    }
}
