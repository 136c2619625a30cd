namespace Exo.Inference.Sampling;

/// <summary>
/// PCG-XSH-RR, a small generator with a published, fixed algorithm: System.Random's sequence for a seed is not
/// promised across .NET versions, and a seed must give the same tokens everywhere.
/// </summary>
internal struct Pcg32
{
    private const ulong Multiplier = 6364136223846793005UL;
    private const ulong Increment = 1442695040888963407UL;
    private ulong _state;

    public Pcg32(ulong seed)
    {
        _state = 0;
        NextUInt();
        _state += seed;
        NextUInt();
    }

    public uint NextUInt()
    {
        var old = _state;
        _state = old * Multiplier + Increment;
        var xorShifted = (uint)(((old >> 18) ^ old) >> 27);
        var rotation = (int)(old >> 59);
        return (xorShifted >> rotation) | (xorShifted << (-rotation & 31));
    }

    /// <summary>A uniform double in [0, 1) from 53 random bits.</summary>
    public double NextDouble() => (((ulong)NextUInt() << 21) ^ NextUInt()) * (1.0 / (1UL << 53));
}
