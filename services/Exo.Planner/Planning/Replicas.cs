using System.Globalization;

namespace Exo.Planner.Planning;

/// <summary>
/// How many rings of a model the planner may place (<c>Planner:Replicas</c>): <c>auto</c>, as many as the cluster's
/// memory holds, or at most <see cref="Max"/>; 1 is pipeline-only, one ring over every node.
/// </summary>
public sealed record Replicas(int? Max)
{
    public const string Setting = "Planner:Replicas";

    public static Replicas Auto { get; } = new((int?)null);

    /// <summary>Reads the setting: empty or <c>auto</c>, or a positive integer; anything else is a clear error.</summary>
    public static Replicas Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text) || text.Trim().Equals("auto", StringComparison.OrdinalIgnoreCase)) return Auto;
        if (int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var max) && max > 0) return new Replicas(max);
        throw new InvalidOperationException($"{Setting} (Planner__Replicas) is '{text}': set it to auto (as many rings as fit) or a positive integer (at most that many rings; 1 = one ring over every node)");
    }

    /// <summary>The most rings allowed.</summary>
    public int Limit => Max ?? int.MaxValue;

    public override string ToString() => Max?.ToString(CultureInfo.InvariantCulture) ?? "auto";
}
