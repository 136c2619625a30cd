namespace Exo.Text.Constraints;

/// <summary>
/// A compiled context-free grammar over bytes, immutable. Every alternative of every rule is a run of
/// <see cref="Code"/> ended by <see cref="End"/>; an element is a terminal (a byte class, index ≥ 0) or a reference
/// to a rule (<c>~rule</c>, negative). Costs are the fewest bytes that complete a position, a rule or the grammar.
/// </summary>
internal sealed class Grammar
{
    public const int End = int.MinValue;
    /// <summary>The cost of what no finite text completes; sums saturate here, far from overflow.</summary>
    public const int Infinite = int.MaxValue / 4;

    private readonly ulong[] _classBits;    // [class * 4 + word]

    public Grammar(int[] code, int[] altStarts, int[] ruleAlts, ByteSet[] classes, int[] positionCost, int start)
    {
        Code = code;
        AltStarts = altStarts;
        RuleAlts = ruleAlts;
        Classes = classes;
        PositionCost = positionCost;
        Start = start;
        _classBits = new ulong[classes.Length * 4];
        for (var c = 0; c < classes.Length; c++)
        {
            for (var w = 0; w < 4; w++) _classBits[c * 4 + w] = classes[c].Word(w);
        }
    }

    public int[] Code { get; }
    /// <summary>Where each alternative starts in <see cref="Code"/>.</summary>
    public int[] AltStarts { get; }
    /// <summary>Rule r's alternatives are <see cref="AltStarts"/>[RuleAlts[r] .. RuleAlts[r + 1]).</summary>
    public int[] RuleAlts { get; }
    public ByteSet[] Classes { get; }
    /// <summary>The fewest bytes that finish the alternative from each position (its own element included).</summary>
    public int[] PositionCost { get; }
    public int Start { get; }

    public bool Matches(int terminal, byte value) => ((_classBits[terminal * 4 + (value >> 6)] >> (value & 63)) & 1) != 0;

    public static int Saturate(long cost) => (int)Math.Min(cost, Infinite);
}
