using Exo.Inference.Weights;

namespace Exo.Inference.Kernels;

/// <summary>
/// Plain loops the tests trust: every sum is accumulated in f64 and rounded once, and each output row depends only on
/// its own input row, so batch composition and prefill-versus-decode never change a result.
/// </summary>
public sealed class ReferenceKernels : IKernels
{
    public static readonly ReferenceKernels Instance = new();

    // One decoded weight row, reused; the reference kernels are single-threaded.
    [ThreadStatic] private static float[]? s_row;

    public DType PreferredType(DType type) => type;

    public TensorLayout PreferredLayout(DType type) => TensorLayout.Rows;

    public void MatMul(ReadOnlySpan<float> x, int n, in Tensor w, ReadOnlySpan<float> bias, Span<float> y)
    {
        int rows = w.Rows, columns = w.Columns;
        if (x.Length < n * columns || y.Length < n * rows) throw new ArgumentException("matmul buffers are too small");
        var row = s_row is { } cached && cached.Length == columns ? cached : s_row = new float[columns];
        for (var o = 0; o < rows; o++)
        {
            w.ReadRow(o, row);
            var b = bias.IsEmpty ? 0.0 : bias[o];
            for (var t = 0; t < n; t++)
            {
                var xt = x.Slice(t * columns, columns);
                var sum = 0.0;
                for (var i = 0; i < columns; i++) sum += (double)xt[i] * row[i];
                y[t * rows + o] = (float)(sum + b);
            }
        }
    }

    public void Embed(in Tensor table, ReadOnlySpan<int> tokens, Span<float> y)
    {
        var columns = table.Columns;
        for (var t = 0; t < tokens.Length; t++) table.ReadRow(tokens[t], y.Slice(t * columns, columns));
    }

    public void RmsNorm(ReadOnlySpan<float> x, int n, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        var d = weight.Length;
        for (var t = 0; t < n; t++)
        {
            var xt = x.Slice(t * d, d);
            var yt = y.Slice(t * d, d);
            var sumSquares = 0.0;
            for (var i = 0; i < d; i++) sumSquares += (double)xt[i] * xt[i];
            var scale = 1.0 / Math.Sqrt(sumSquares / d + eps);
            for (var i = 0; i < d; i++) yt[i] = (float)(weight[i] * (xt[i] * scale));
        }
    }

    public void Rope(Span<float> x, int n, int heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        var half = headDim / 2;
        for (var t = 0; t < n; t++)
        {
            var c = cos.Slice(t * half, half);
            var s = sin.Slice(t * half, half);
            for (var h = 0; h < heads; h++)
            {
                var v = x.Slice((t * heads + h) * headDim, headDim);
                for (var i = 0; i < half; i++)
                {
                    double a = v[i], b = v[i + half];
                    v[i] = (float)(a * c[i] - b * s[i]);
                    v[i + half] = (float)(b * c[i] + a * s[i]);
                }
            }
        }
    }

    public void Attention(ReadOnlySpan<float> q, int count, int first, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        int heads, int kvHeads, int headDim, int window, Span<float> scores, Span<float> output)
    {
        var group = heads / kvHeads;
        var kvDim = kvHeads * headDim;
        var scale = 1.0 / Math.Sqrt(headDim);
        for (var t = 0; t < count; t++)
        {
            var position = first + t;
            var start = window > 0 ? Math.Max(0, position - window + 1) : 0;
            for (var h = 0; h < heads; h++)
            {
                var qh = q.Slice((t * heads + h) * headDim, headDim);
                var kvOffset = h / group * headDim;

                var max = double.NegativeInfinity;
                for (var p = start; p <= position; p++)
                {
                    var kp = keys.Slice(p * kvDim + kvOffset, headDim);
                    var dot = 0.0;
                    for (var i = 0; i < headDim; i++) dot += (double)qh[i] * kp[i];
                    scores[p] = (float)(dot * scale);
                    max = Math.Max(max, scores[p]);
                }

                // Softmax weights replace the scores in place; the normaliser stays in f64.
                var total = 0.0;
                for (var p = start; p <= position; p++)
                {
                    var e = Math.Exp(scores[p] - max);
                    scores[p] = (float)e;
                    total += e;
                }

                var oh = output.Slice((t * heads + h) * headDim, headDim);
                for (var i = 0; i < headDim; i++)
                {
                    var sum = 0.0;
                    for (var p = start; p <= position; p++) sum += (double)scores[p] * values[p * kvDim + kvOffset + i];
                    oh[i] = (float)(sum / total);
                }
            }
        }
    }

    public void SiluMul(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (var i = 0; i < gate.Length; i++)
        {
            double g = gate[i];
            gate[i] = (float)(g / (1.0 + Math.Exp(-g)) * up[i]);
        }
    }

    public void Add(Span<float> x, ReadOnlySpan<float> y)
    {
        for (var i = 0; i < x.Length; i++) x[i] += y[i];
    }
}
