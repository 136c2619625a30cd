namespace Exo.Inference.Model;

/// <summary>
/// The keys and values one sequence has produced in one stage's layers, held where the stage computes (host memory or
/// a GPU). Its capacity is fixed when the request is admitted, so a long generation can never grow memory past what was
/// planned for it. Only the stage that created a cache can run it.
/// </summary>
public abstract class KvCache(int capacity) : IDisposable
{
    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "a KV cache needs room for at least one position");

    /// <summary>Positions already stored (and the position of the next token).</summary>
    public int Length { get; private set; }

    /// <summary>Marks <paramref name="count"/> more positions as stored, once every layer has written them.</summary>
    internal void Advance(int count) => Length += count;

    /// <summary>Gives the cache's memory back; a GPU cache's once no submitted work can still read it.</summary>
    public virtual void Dispose() => GC.SuppressFinalize(this);
}

/// <summary>A KV cache in host memory, for the CPU kernels.</summary>
public sealed class HostKvCache : KvCache
{
    private readonly float[][] _keys;   // per layer: [capacity, kvHeads * headDim]
    private readonly float[][] _values; // per layer: [capacity, kvHeads * headDim]
    private readonly int _kvDim;

    public HostKvCache(int layers, int kvDim, int capacity) : base(capacity)
    {
        _kvDim = kvDim;
        _keys = new float[layers][];
        _values = new float[layers][];
        for (var l = 0; l < layers; l++)
        {
            _keys[l] = new float[capacity * kvDim];
            _values[l] = new float[capacity * kvDim];
        }
    }

    /// <summary>Keys of positions [0, end) in the stage's layer <paramref name="layer"/> (0-based within the stage).</summary>
    public Span<float> Keys(int layer, int end) => _keys[layer].AsSpan(0, end * _kvDim);

    public Span<float> Values(int layer, int end) => _values[layer].AsSpan(0, end * _kvDim);
}
