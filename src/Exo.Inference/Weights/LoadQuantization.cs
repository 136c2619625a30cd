namespace Exo.Inference.Weights;

/// <summary>
/// The types a model's weight matrices may be quantized to as they load (the files stay as they are): the name a
/// command line, a setting or a placement gives, read the same way everywhere.
/// </summary>
public static class LoadQuantization
{
    public static IReadOnlyList<DType> Supported { get; } = [DType.Q8_0, DType.Q4_0];

    /// <summary>Null for an empty name or "none" (matrices as stored); else q8_0 or q4_0, any case.</summary>
    public static DType? Parse(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Equals("none", StringComparison.OrdinalIgnoreCase)) return null;
        DType? type = Enum.TryParse<DType>(name, ignoreCase: true, out var parsed) && !name.All(char.IsDigit) ? parsed : null;
        return type is { } t && Supported.Contains(t)
            ? t
            : throw new ArgumentException($"cannot quantize weights to '{name}' as they load: choose {string.Join(" or ", Supported.Select(t => Name(t)))} (or none)");
    }

    /// <summary>The name <see cref="Parse"/> reads back: "" for none.</summary>
    public static string Name(DType? type) => type?.ToString().ToLowerInvariant() ?? "";
}
