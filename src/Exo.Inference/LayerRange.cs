namespace Exo.Inference;

/// <summary>A half-open range of decoder layers [Start, End) that one pipeline stage runs.</summary>
public readonly record struct LayerRange(int Start, int End)
{
    public int Count => End - Start;

    public bool Contains(int layer) => layer >= Start && layer < End;

    public static LayerRange All(int layerCount) => new(0, layerCount);

    public void Validate(int layerCount)
    {
        if (Start < 0 || End > layerCount || Start >= End)
        {
            throw new ArgumentOutOfRangeException(nameof(LayerRange),
                $"layer range [{Start}, {End}) is not a non-empty part of the model's {layerCount} layers");
        }
    }

    public override string ToString() => $"[{Start}, {End})";
}
