using Exo.Inference.Weights;

namespace Exo.Planner.Planning;

/// <summary>
/// The type every worker quantizes the models' weight matrices to as it loads them (<c>Planner:Quantize</c>: none,
/// q8_0 or q4_0). The planner decides it because it sizes every stage: a q8_0 model needs about half the memory of its
/// f16 files. Placements carry it, so every stage of a ring loads the same weights.
/// </summary>
public sealed record WeightQuantization(DType? Type)
{
    public const string Setting = "Planner:Quantize";

    /// <summary>The name placements carry ("" for none).</summary>
    public string Name => LoadQuantization.Name(Type);

    /// <summary>Reads the setting; anything but none, q8_0 or q4_0 is a clear error.</summary>
    public static WeightQuantization Parse(string? text)
    {
        try
        {
            return new WeightQuantization(LoadQuantization.Parse(text?.Trim()));
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException($"{Setting} (Planner__Quantize) is '{text}': {e.Message}");
        }
    }

    public override string ToString() => Type is null ? "none" : Name;
}
