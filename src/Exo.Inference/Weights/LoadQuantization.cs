namespace Exo.Inference.Weights;

/// <summary>
/// The types a model's weight matrices may be quantized to as they load (the files stay as they are): the name a
/// command line, a setting or a placement gives, read the same way everywhere.
/// </summary>
public static class LoadQuantization
{
    public static IReadOnlyList<DType> Supported { get; } = [DType.Q8_0, DType.Q4_0];

    /// <summary>Reads a name: empty or "none" (matrices as stored) is null, else q8_0 or q4_0, in any case; false for anything else.</summary>
    public static bool TryParse(string? name, out DType? type)
    {
        type = null;
        var text = name?.Trim() ?? "";
        if (text.Length == 0 || text.Equals("none", StringComparison.OrdinalIgnoreCase)) return true;
        foreach (var supported in Supported)
        {
            if (!Name(supported).Equals(text, StringComparison.OrdinalIgnoreCase)) continue;
            type = supported;
            return true;
        }

        return false;
    }

    /// <summary>As <see cref="TryParse"/>, with a clear error for a name that is not a supported type.</summary>
    public static DType? Parse(string? name) => TryParse(name, out var type)
        ? type
        : throw new ArgumentException($"cannot quantize weights to '{name}' as they load: choose {string.Join(" or ", Supported.Select(t => Name(t)))} (or none)");

    /// <summary>The name <see cref="Parse"/> reads back: "" for none.</summary>
    public static string Name(DType? type) => type?.ToString().ToLowerInvariant() ?? "";
}
