using Exo.Inference.Weights;

namespace Exo.Inference.Kernels;

/// <summary>
/// The numeric operations of a forward pass. Activations are f32 and row-major; weights are any <see cref="DType"/>
/// and are read in place from the mapped file. A fast implementation replaces the reference one behind this interface.
/// </summary>
public interface IKernels : IWeightPreferences
{
    /// <summary>y[n, w.Rows] = x[n, w.Columns] · wᵀ (+ bias when not empty), for weights in either layout.</summary>
    void MatMul(ReadOnlySpan<float> x, int n, in Tensor w, ReadOnlySpan<float> bias, Span<float> y);

    /// <summary>y[t, :] = embedding row of tokens[t].</summary>
    void Embed(in Tensor table, ReadOnlySpan<int> tokens, Span<float> y);

    /// <summary>Normalises each of the n rows of x[n, weight.Length] by its root mean square, then scales by weight.</summary>
    void RmsNorm(ReadOnlySpan<float> x, int n, ReadOnlySpan<float> weight, float eps, Span<float> y);

    /// <summary>
    /// Rotates x[n, heads * headDim] in place; cos and sin are [n, headDim / 2]. Pairs are (i, i + headDim / 2),
    /// the "rotate half" layout of Hugging Face checkpoints.
    /// </summary>
    void Rope(Span<float> x, int n, int heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin);

    /// <summary>
    /// Causal attention for one sequence: queries q[count, heads * headDim] at positions first .. first + count - 1
    /// over keys and values [first + count, kvHeads * headDim]; window &gt; 0 limits each query to that many most
    /// recent positions. output is [count, heads * headDim]; scores is scratch of at least first + count.
    /// </summary>
    void Attention(ReadOnlySpan<float> q, int count, int first, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        int heads, int kvHeads, int headDim, int window, Span<float> scores, Span<float> output);

    /// <summary>gate[i] = silu(gate[i]) * up[i].</summary>
    void SiluMul(Span<float> gate, ReadOnlySpan<float> up);

    /// <summary>x[i] += y[i].</summary>
    void Add(Span<float> x, ReadOnlySpan<float> y);
}
