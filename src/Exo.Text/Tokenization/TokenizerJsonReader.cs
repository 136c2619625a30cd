using System.Text.Json;

namespace Exo.Text.Tokenization;

internal sealed record TokenizerParts(
    BpeModel Model,
    Dictionary<string, int> Vocab,
    IReadOnlyList<AddedToken> AddedTokens,
    INormalizer? Normalizer,
    IPreTokenizer? PreTokenizer,
    IDecoder? Decoder,
    int[] PrefixIds,
    int[] SuffixIds);

/// <summary>Reads and validates tokenizer.json into the pipeline's parts.</summary>
internal static class TokenizerJsonReader
{
    public static TokenizerParts Read(string path)
    {
        JsonDocument document;
        try
        {
            using var stream = File.OpenRead(path);
            document = JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = 128 });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            throw new TokenizerFormatException($"cannot read tokenizer file '{path}': {e.Message}", e);
        }
        using (document)
        {
            try
            {
                return Parse(document.RootElement);
            }
            catch (TokenizerFormatException e)
            {
                throw new TokenizerFormatException($"{path}: {e.Message}", e);
            }
            catch (InvalidOperationException e)
            {
                // A JsonElement read with the wrong kind (a number where a string belongs, ...).
                throw new TokenizerFormatException($"{path}: unexpected value type: {e.Message}", e);
            }
        }
    }

    private static TokenizerParts Parse(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new TokenizerFormatException("the top level must be a JSON object");
        }
        var model = JsonRead.Property(root, "model", "tokenizer.json");
        var type = JsonRead.Optional(model, "type")?.GetString() ?? "BPE";
        if (type != "BPE")
        {
            throw new TokenizerFormatException($"unsupported model type '{type}' (only BPE is supported)");
        }
        foreach (var affix in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
        {
            if (JsonRead.Optional(model, affix) is { } value && value.GetString() is { Length: > 0 })
            {
                throw new TokenizerFormatException($"BPE {affix} is not supported");
            }
        }

        var vocab = ReadVocab(JsonRead.Property(model, "vocab", "BPE model"));
        var merges = ReadMerges(JsonRead.Property(model, "merges", "BPE model"), vocab);
        var bpe = new BpeModel(
            vocab,
            merges,
            JsonRead.Optional(model, "unk_token")?.GetString(),
            JsonRead.Bool(model, "fuse_unk", false),
            JsonRead.Bool(model, "byte_fallback", false),
            JsonRead.Bool(model, "ignore_merges", false));

        var added = JsonRead.Optional(root, "added_tokens") is { } list
            ? list.EnumerateArray().Select(ReadAddedToken).ToList()
            : [];
        var (prefix, suffix) = ReadPostProcessor(JsonRead.Optional(root, "post_processor"));

        return new TokenizerParts(
            bpe,
            new Dictionary<string, int>(vocab, StringComparer.Ordinal),
            added,
            NormalizerReader.Read(root.TryGetProperty("normalizer", out var n) ? n : NullElement),
            PreTokenizerReader.Read(root.TryGetProperty("pre_tokenizer", out var p) ? p : NullElement),
            DecoderReader.Read(root.TryGetProperty("decoder", out var d) ? d : NullElement),
            prefix,
            suffix);
    }

    private static readonly JsonElement NullElement = JsonDocument.Parse("null").RootElement;

    private static Dictionary<string, int> ReadVocab(JsonElement vocab)
    {
        if (vocab.ValueKind != JsonValueKind.Object)
        {
            throw new TokenizerFormatException("BPE model: 'vocab' must be an object of token to id");
        }
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in vocab.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out var id) || id < 0)
            {
                throw new TokenizerFormatException($"BPE model: vocabulary entry '{entry.Name}' has no valid id");
            }
            result[entry.Name] = id;
        }
        if (result.Count == 0)
        {
            throw new TokenizerFormatException("BPE model: the vocabulary is empty");
        }
        return result;
    }

    /// <summary>Reads merges ("a b" or ["a", "b"]) straight into vocabulary ids, without allocating the pieces.</summary>
    private static List<(int, int, int)> ReadMerges(JsonElement merges, Dictionary<string, int> vocab)
    {
        if (merges.ValueKind != JsonValueKind.Array)
        {
            throw new TokenizerFormatException("BPE model: 'merges' must be an array");
        }
        var lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        var result = new List<(int, int, int)>(merges.GetArrayLength());
        foreach (var merge in merges.EnumerateArray())
        {
            string left;
            int split;
            if (merge.ValueKind == JsonValueKind.String)
            {
                left = merge.GetString()!;
                split = left.IndexOf(' ');
                if (split <= 0 || split != left.LastIndexOf(' ') || split == left.Length - 1)
                {
                    throw new TokenizerFormatException($"BPE model: merge '{left}' is not two tokens separated by one space");
                }
                left = left.Remove(split, 1);
            }
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
            {
                var first = merge[0].GetString()!;
                split = first.Length;
                left = first + merge[1].GetString();
            }
            else
            {
                throw new TokenizerFormatException($"BPE model: merge {result.Count} must be \"a b\" or [\"a\", \"b\"]");
            }
            // left now holds the merged token; its first `split` characters are the left part.
            if (!lookup.TryGetValue(left.AsSpan(0, split), out var leftId) || !lookup.TryGetValue(left.AsSpan(split), out var rightId))
            {
                throw new TokenizerFormatException($"merge {result.Count} ('{left[..split]} {left[split..]}') uses a token that is not in the vocabulary");
            }
            if (!vocab.TryGetValue(left, out var mergedId))
            {
                throw new TokenizerFormatException($"merge {result.Count} ('{left[..split]} {left[split..]}') makes a token that is not in the vocabulary");
            }
            result.Add((leftId, rightId, mergedId));
        }
        return result;
    }

    private static AddedToken ReadAddedToken(JsonElement element)
    {
        var id = JsonRead.Int(element, "id", "added token");
        if (id < 0)
        {
            throw new TokenizerFormatException($"added token id {id} is negative");
        }
        return new AddedToken(
            id,
            JsonRead.String(element, "content", "added token"),
            JsonRead.Bool(element, "special", false),
            JsonRead.Bool(element, "lstrip", false),
            JsonRead.Bool(element, "rstrip", false),
            JsonRead.Bool(element, "single_word", false),
            JsonRead.Bool(element, "normalized", false));
    }

    /// <summary>The ids a post-processor puts before and after a single sequence (TemplateProcessing; ByteLevel adds none).</summary>
    private static (int[] Prefix, int[] Suffix) ReadPostProcessor(JsonElement? element)
    {
        if (element is not { } processor)
        {
            return ([], []);
        }
        var type = JsonRead.String(processor, "type", "post_processor");
        switch (type)
        {
            case "ByteLevel":
                return ([], []);
            case "Sequence":
                var prefix = new List<int>();
                var suffix = new List<int>();
                foreach (var step in JsonRead.Array(processor, "processors", "Sequence post_processor"))
                {
                    var (p, s) = ReadPostProcessor(step);
                    prefix.AddRange(p);
                    suffix.AddRange(s);
                }
                return ([.. prefix], [.. suffix]);
            case "TemplateProcessing":
                return ReadTemplate(processor);
            default:
                throw new TokenizerFormatException($"unsupported post_processor type '{type}'");
        }
    }

    private static (int[] Prefix, int[] Suffix) ReadTemplate(JsonElement processor)
    {
        var specials = JsonRead.Property(processor, "special_tokens", "TemplateProcessing");
        var prefix = new List<int>();
        var suffix = new List<int>();
        var seenSequence = false;
        foreach (var piece in JsonRead.Array(processor, "single", "TemplateProcessing"))
        {
            if (JsonRead.Optional(piece, "Sequence") is not null)
            {
                seenSequence = true;
                continue;
            }
            var name = JsonRead.String(JsonRead.Property(piece, "SpecialToken", "TemplateProcessing piece"), "id", "TemplateProcessing special token");
            var entry = JsonRead.Property(specials, name, "TemplateProcessing special_tokens");
            foreach (var id in JsonRead.Array(entry, "ids", $"special token '{name}'"))
            {
                if (id.ValueKind != JsonValueKind.Number || !id.TryGetInt32(out var value) || value < 0)
                {
                    throw new TokenizerFormatException($"special token '{name}' has an invalid id");
                }
                (seenSequence ? suffix : prefix).Add(value);
            }
        }
        return ([.. prefix], [.. suffix]);
    }
}
