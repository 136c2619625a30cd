namespace Exo.Text.Constraints;

/// <summary>
/// A compiled context-free grammar over bytes, immutable. Every alternative of every rule is a run of
/// <see cref="Code"/> ended by <see cref="End"/>; an element is a terminal (a byte class, index ≥ 0) or a reference
/// to a rule (<c>~rule</c>, negative). Rule r's alternatives start at <see cref="AltStarts"/>[RuleAlts[r] ..
/// RuleAlts[r + 1]). <see cref="PositionCost"/> is the fewest bytes that finish an alternative from each position,
/// its own element included.
/// </summary>
internal sealed record Grammar(int[] Code, int[] AltStarts, int[] RuleAlts, ByteSet[] Classes, int[] PositionCost, int Start)
{
    public const int End = int.MinValue;
    /// <summary>The cost of what no finite text completes; sums saturate here, far from overflow.</summary>
    public const int Infinite = int.MaxValue / 4;

    private readonly ulong[] _classBits = [.. Classes.SelectMany(c => (ulong[])[c.W0, c.W1, c.W2, c.W3])];    // [class * 4 + word]

    public bool Matches(int terminal, byte value) => ((_classBits[terminal * 4 + (value >> 6)] >> (value & 63)) & 1) != 0;

    public static int Saturate(long cost) => (int)Math.Min(cost, Infinite);
}
