namespace Exo.Text;

/// <summary>A range of a string's UTF-16 code units, from <see cref="Start"/> up to (not including) <see cref="End"/>.</summary>
public readonly record struct CharSpan(int Start, int End)
{
    public bool Contains(int index) => index >= Start && index < End;
}
