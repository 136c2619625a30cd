using System.Text.Json;

namespace Exo.Text.Tokenization;

/// <summary>
/// The model's BOS/EOS tokens and every id that ends generation: generation_config.json's <c>eos_token_id</c>
/// (an int or a list), config.json's, and tokenizer_config.json's <c>eos_token</c>.
/// </summary>
public sealed record SpecialTokenInfo(string? BosToken, int? BosTokenId, string? EosToken, int? EosTokenId, IReadOnlySet<int> StopTokenIds)
{
    public static SpecialTokenInfo Empty { get; } = new(null, null, null, null, new HashSet<int>());

    public static SpecialTokenInfo FromModelDirectory(string directory, Tokenizer tokenizer)
    {
        var tokenizerConfig = ReadOptionalJson(Path.Combine(directory, "tokenizer_config.json"));
        var generationConfig = ReadOptionalJson(Path.Combine(directory, "generation_config.json"));
        var config = ReadOptionalJson(Path.Combine(directory, "config.json"));

        var bos = TokenText(tokenizerConfig, "bos_token");
        var eos = TokenText(tokenizerConfig, "eos_token");
        var stops = new HashSet<int>();
        AddIds(generationConfig, "eos_token_id", stops);
        if (stops.Count == 0)
        {
            AddIds(config, "eos_token_id", stops);
        }
        var eosId = eos is null ? null : tokenizer.TokenToId(eos);
        if (eosId is { } e)
        {
            stops.Add(e);
        }
        var bosId = (bos is null ? null : tokenizer.TokenToId(bos)) ?? FirstId(generationConfig, "bos_token_id") ?? FirstId(config, "bos_token_id");
        return new SpecialTokenInfo(bos, bosId, eos, eosId ?? stops.Cast<int?>().FirstOrDefault(), stops);
    }

    /// <summary>A special token as tokenizer_config.json writes it: a string, or an AddedToken object with "content".</summary>
    internal static string? TokenText(JsonElement? config, string name)
    {
        if (config is not { } root || !root.TryGetProperty(name, out var value))
        {
            return null;
        }
        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object when value.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String => content.GetString(),
            JsonValueKind.Null => null,
            _ => throw new TokenizerFormatException($"tokenizer_config.json: '{name}' must be a string or an object with 'content'"),
        };
    }

    /// <summary>Parses a JSON file that may be absent; a present but malformed file is an error.</summary>
    internal static JsonElement? ReadOptionalJson(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            return document.RootElement.ValueKind == JsonValueKind.Object
                ? document.RootElement.Clone()
                : throw new TokenizerFormatException($"{path}: the top level must be a JSON object");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            throw new TokenizerFormatException($"cannot read '{path}': {e.Message}", e);
        }
    }

    private static void AddIds(JsonElement? config, string name, HashSet<int> ids)
    {
        if (config is not { } root || !root.TryGetProperty(name, out var value))
        {
            return;
        }
        var items = value.ValueKind == JsonValueKind.Array ? value.EnumerateArray().ToList() : [value];
        foreach (var item in items)
        {
            if (item.ValueKind == JsonValueKind.Null)
            {
                continue;
            }
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out var id) || id < 0)
            {
                throw new TokenizerFormatException($"'{name}' must be a non-negative integer or a list of them");
            }
            ids.Add(id);
        }
    }

    private static int? FirstId(JsonElement? config, string name)
    {
        var ids = new HashSet<int>();
        AddIds(config, name, ids);
        return ids.Count > 0 ? ids.First() : null;
    }
}
