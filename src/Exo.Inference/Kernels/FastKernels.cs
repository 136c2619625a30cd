using System.Runtime.Intrinsics;
using Exo.Inference.Weights;

namespace Exo.Inference.Kernels;

/// <summary>
/// SIMD kernels on a pool of dedicated threads: the widest vectors the hardware accelerates (512, 256 or 128 bits),
/// weights read in place (f16 and bf16 converted in registers), each weight row streamed once for all activation rows of
/// a decode batch and reused from cache across a prefill's rows. Results match <see cref="ReferenceKernels"/> to float
/// rounding, and every output depends only on its own input row, so batching and step-by-step decoding agree exactly.
/// </summary>
public sealed class FastKernels : IKernels, IDisposable
{
    private static readonly Lazy<FastKernels> s_default = new(() => new FastKernels());

    private readonly WorkerPool _pool;
    private readonly IKernels _impl;

    /// <summary>Kernels on <paramref name="threads"/> threads (the calling thread included); 0 means one per processor.</summary>
    public FastKernels(int threads = 0) : this(threads, PreferredVectorBits(), QuantDot.Best)
    {
    }

    /// <summary>Kernels with a forced vector width and integer path, so tests run each one's code on any machine.</summary>
    internal FastKernels(int threads, int vectorBits, QuantDot.Path quantPath)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        _pool = new WorkerPool(threads == 0 ? Environment.ProcessorCount : threads);
        VectorBits = vectorBits;
        QuantPath = quantPath;
        _impl = vectorBits switch
        {
            512 => new SimdKernels<Simd512, Vector512<float>>(_pool, quantPath),
            256 => new SimdKernels<Simd256, Vector256<float>>(_pool, quantPath),
            128 => new SimdKernels<Simd128, Vector128<float>>(_pool, quantPath),
            _ => throw new ArgumentOutOfRangeException(nameof(vectorBits), vectorBits, "vector width must be 128, 256 or 512 bits"),
        };
    }

    /// <summary>One instance per process with a thread per processor: what the engine uses unless told otherwise.</summary>
    public static FastKernels Default => s_default.Value;

    public int Threads => _pool.Threads;

    public int VectorBits { get; }

    /// <summary>The integer instructions of quantized dot products.</summary>
    internal QuantDot.Path QuantPath { get; }

    /// <summary>What runs, for reports: e.g. "fast-512, AVX-VNNI".</summary>
    public string Name => $"fast-{VectorBits}, " + QuantPath switch
    {
        QuantDot.Path.Avx2 => "AVX2",
        QuantDot.Path.AvxVnni => "AVX-VNNI",
        QuantDot.Path.ArmDot => "Arm sdot",
        _ => "portable int8",
    };

    private static int PreferredVectorBits() =>
        Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : 128;

    public DType PreferredType(DType type) => _impl.PreferredType(type);

    public TensorLayout PreferredLayout(DType type) => _impl.PreferredLayout(type);

    public void MatMul(ReadOnlySpan<float> x, int n, in Tensor w, ReadOnlySpan<float> bias, Span<float> y) => _impl.MatMul(x, n, w, bias, y);

    public void Embed(in Tensor table, ReadOnlySpan<int> tokens, Span<float> y) => _impl.Embed(table, tokens, y);

    public void RmsNorm(ReadOnlySpan<float> x, int n, ReadOnlySpan<float> weight, float eps, Span<float> y) => _impl.RmsNorm(x, n, weight, eps, y);

    public void Rope(Span<float> x, int n, int heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin) =>
        _impl.Rope(x, n, heads, headDim, cos, sin);

    public void Attention(ReadOnlySpan<float> q, int count, int first, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        int heads, int kvHeads, int headDim, int window, Span<float> scores, Span<float> output) =>
        _impl.Attention(q, count, first, keys, values, heads, kvHeads, headDim, window, scores, output);

    public void SiluMul(Span<float> gate, ReadOnlySpan<float> up) => _impl.SiluMul(gate, up);

    public void Add(Span<float> x, ReadOnlySpan<float> y) => _impl.Add(x, y);

    public void Dispose() => _pool.Dispose();
}
