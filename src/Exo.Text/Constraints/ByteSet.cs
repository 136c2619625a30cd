using System.Numerics;

namespace Exo.Text.Constraints;

/// <summary>A set of byte values: what one terminal of a grammar matches.</summary>
internal readonly record struct ByteSet(ulong W0, ulong W1, ulong W2, ulong W3)
{
    public static ByteSet Of(byte value) => Range(value, value);

    public static ByteSet Range(byte first, byte last)
    {
        var set = default(ByteSet);
        for (var b = (int)first; b <= last; b++)
        {
            set = set.With((byte)b);
        }
        return set;
    }

    public bool IsEmpty => (W0 | W1 | W2 | W3) == 0;

    public int Count => BitOperations.PopCount(W0) + BitOperations.PopCount(W1) + BitOperations.PopCount(W2) + BitOperations.PopCount(W3);

    public bool Contains(byte value) => ((Word(value >> 6) >> (value & 63)) & 1) != 0;

    private ulong Word(int index) => index switch { 0 => W0, 1 => W1, 2 => W2, _ => W3 };

    public ByteSet With(byte value)
    {
        var bit = 1UL << (value & 63);
        return (value >> 6) switch
        {
            0 => this with { W0 = W0 | bit },
            1 => this with { W1 = W1 | bit },
            2 => this with { W2 = W2 | bit },
            _ => this with { W3 = W3 | bit },
        };
    }

    public ByteSet Union(ByteSet other) => new(W0 | other.W0, W1 | other.W1, W2 | other.W2, W3 | other.W3);

    public ByteSet Except(ByteSet other) => new(W0 & ~other.W0, W1 & ~other.W1, W2 & ~other.W2, W3 & ~other.W3);

    public bool Overlaps(ByteSet other) => ((W0 & other.W0) | (W1 & other.W1) | (W2 & other.W2) | (W3 & other.W3)) != 0;

    public override string ToString()
    {
        var parts = new List<string>();
        for (var b = 0; b < 256; b++)
        {
            if (Contains((byte)b)) parts.Add(b is >= 0x21 and < 0x7F ? ((char)b).ToString() : $"0x{b:X2}");
        }
        return "[" + string.Join(' ', parts) + "]";
    }
}
