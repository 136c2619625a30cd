namespace Exo.Inference.Model;

/// <summary>
/// The keys and values one sequence has produced in one stage's layers. Its capacity is fixed when the request is
/// admitted, so a long generation can never grow memory past what was planned for it.
/// </summary>
public sealed class KvCache
{
    private readonly float[][] _keys;   // per layer: [capacity, kvHeads * headDim]
    private readonly float[][] _values; // per layer: [capacity, kvHeads * headDim]
    private readonly int _kvDim;

    public KvCache(int layers, int kvDim, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _kvDim = kvDim;
        Capacity = capacity;
        _keys = new float[layers][];
        _values = new float[layers][];
        for (var l = 0; l < layers; l++)
        {
            _keys[l] = new float[capacity * kvDim];
            _values[l] = new float[capacity * kvDim];
        }
    }

    public int Capacity { get; }

    /// <summary>Positions already stored (and the position of the next token).</summary>
    public int Length { get; private set; }

    /// <summary>Keys of positions [0, end) in the stage's layer <paramref name="layer"/> (0-based within the stage).</summary>
    public Span<float> Keys(int layer, int end) => _keys[layer].AsSpan(0, end * _kvDim);

    public Span<float> Values(int layer, int end) => _values[layer].AsSpan(0, end * _kvDim);

    /// <summary>Marks <paramref name="count"/> more positions as stored, once every layer has written them.</summary>
    internal void Advance(int count) => Length += count;
}
