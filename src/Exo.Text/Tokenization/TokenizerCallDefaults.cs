using System.Text.Json;

namespace Exo.Text.Tokenization;

/// <summary>
/// The settings of tokenizer_config.json that transformers' tokenizer call pads and truncates with: the model's
/// maximum length, the sides, and the padding token (null when the model has none in its vocabulary).
/// </summary>
public sealed record TokenizerCallDefaults(double ModelMaxLength, string PaddingSide, string TruncationSide, int? PadTokenId)
{
    /// <summary>transformers' VERY_LARGE_INTEGER: the model_max_length of a tokenizer that names none.</summary>
    public const double Unbounded = 1e30;

    /// <summary>transformers' LARGE_INTEGER: a model_max_length above it means "no maximum" when padding or truncating.</summary>
    public const double NoLimitAbove = 1e20;

    /// <summary>The model's maximum length when it has a real one.</summary>
    public int? MaxLength => ModelMaxLength <= NoLimitAbove ? (int)Math.Min(ModelMaxLength, int.MaxValue) : null;

    public static TokenizerCallDefaults FromModelDirectory(string directory, Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var config = SpecialTokenInfo.ReadOptionalJson(Path.Combine(directory, "tokenizer_config.json"));
        var maxLength = Unbounded;
        if (config is { } root && root.TryGetProperty("model_max_length", out var value) && value.ValueKind != JsonValueKind.Null)
        {
            maxLength = value.ValueKind == JsonValueKind.Number && value.GetDouble() >= 0
                ? value.GetDouble()
                : throw new TokenizerFormatException("tokenizer_config.json: model_max_length must be a non-negative number");
        }
        var pad = SpecialTokenInfo.TokenText(config, "pad_token");
        return new TokenizerCallDefaults(maxLength, Side(config, "padding_side", "Padding"), Side(config, "truncation_side", "Truncation"),
            pad is null ? null : tokenizer.TokenToId(pad));
    }

    private static string Side(JsonElement? config, string name, string what)
    {
        if (config is not { } root || !root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return "right";
        }
        return value.ValueKind == JsonValueKind.String && value.GetString() is "left" or "right"
            ? value.GetString()!
            : throw new TokenizerFormatException($"tokenizer_config.json: {what} side should be selected between 'right' and 'left', current value: {value.GetRawText()}");
    }
}
