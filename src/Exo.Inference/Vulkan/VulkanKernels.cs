using System.Runtime.InteropServices;
using Exo.Inference.Weights;

namespace Exo.Inference.Vulkan;

/// <summary>A weight matrix [Rows, Columns] on the GPU, packed as weights.glsl reads its type.</summary>
internal sealed record GpuMatrix(GpuBuffer Buffer, DType Type, int Rows, int Columns, long ScalesOffset)
{
    public ulong Values => Buffer.Address;
    public ulong Scales => Buffer.Address + (ulong)ScalesOffset;

    // The kernels compiled for its type, named once here rather than at every launch.
    public string MatVecKernel { get; } = "matmul_" + VulkanKernels.TypeName(Type);
    public string MatVec1Kernel { get; } = "matmul1_" + VulkanKernels.TypeName(Type);
    public string GluKernel { get; } = "matmul_glu_" + VulkanKernels.TypeName(Type);
    public string Glu1Kernel { get; } = "matmul1_glu_" + VulkanKernels.TypeName(Type);
    public string TiledKernel { get; } = "matmul_tiled_" + VulkanKernels.TypeName(Type);
    public string EmbedKernel { get; } = "embed_" + VulkanKernels.TypeName(Type);
}

/// <summary>
/// The forward pass's operations as GPU launches: each records one kernel (Shaders/NAME.comp) with its push constants
/// and launch geometry into the stream. Arguments are device addresses; a zero address is an absent bias.
/// </summary>
internal sealed class VulkanKernels(CommandStream stream)
{
    public CommandStream Stream => stream;

    /// <summary>Kernel name suffix of each weight type the shaders read.</summary>
    public static string TypeName(DType type) => type switch
    {
        DType.F32 or DType.F16 or DType.BF16 or DType.Q8_0 or DType.Q4_0 or DType.Q4_K or DType.Q6_K => type.ToString().ToLowerInvariant(),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "no GPU kernel reads this weight type"),
    };

    /// <summary>
    /// From this many activation rows on, matrix products run tiled (matmul_tiled.comp: each weight dequantized once
    /// per 64 rows); below it, as matrix × vector (matmul.comp), whose rows come out the same whatever the batch.
    /// </summary>
    public const int TiledRows = 32;

    /// <summary>Output rows of one sequence's matrix × vector workgroup (RS in matmul.comp, SINGLE_ROW).</summary>
    private const int MatVecRows = 4;

    /// <summary>Output rows each subgroup of a decode batch's matrix × vector workgroup computes (RS in matmul.comp).</summary>
    private const int BatchRows = 2;

    /// <summary>Bits of the matrix kernels' flags (FLAG_* in matmul.comp and matmul_tiled.comp).</summary>
    [Flags]
    private enum MatMulFlags : uint
    {
        None = 0,
        Bias = 1,
        Accumulate = 2,
        Bias2 = 4,
    }

    /// <summary>
    /// y[n, w.Rows] = x[n, w.Columns] · wᵀ (+ bias); with <paramref name="accumulate"/>, added to y instead (the residual
    /// connection, without a pass of its own).
    /// </summary>
    public void MatMul(ulong x, int n, GpuMatrix w, ulong bias, ulong y, bool accumulate = false)
    {
        var flags = (bias != 0 ? MatMulFlags.Bias : 0) | (accumulate ? MatMulFlags.Accumulate : 0);
        var kernel = n >= TiledRows ? w.TiledKernel : n == 1 ? w.MatVec1Kernel : w.MatVecKernel;
        Launch(kernel, new MatMulPush(x, w.Values, w.Scales, bias, y, 0, 0, 0, (uint)n, (uint)w.Rows, (uint)w.Columns, flags), n, w);
    }

    /// <summary>
    /// gate[n, rows] = silu(x · gateᵀ + gateBias) · (x · upᵀ + upBias): for a decode batch one pass over both matrices;
    /// from <see cref="TiledRows"/> rows on, or where the two are stored as different types, the two products (up into
    /// <paramref name="upScratch"/>) and then <see cref="SiluMul"/>, after a barrier.
    /// </summary>
    public void GatedUp(ulong x, int n, GpuMatrix gateW, ulong gateBias, GpuMatrix upW, ulong upBias, ulong gate, ulong upScratch)
    {
        if (n >= TiledRows || upW.Type != gateW.Type || upW.Rows != gateW.Rows || upW.Columns != gateW.Columns)
        {
            MatMul(x, n, gateW, gateBias, gate);
            MatMul(x, n, upW, upBias, upScratch);
            stream.Barrier();
            SiluMul(gate, upScratch, n * gateW.Rows);
            return;
        }

        var flags = (gateBias != 0 ? MatMulFlags.Bias : 0) | (upBias != 0 ? MatMulFlags.Bias2 : 0);
        Launch(n == 1 ? gateW.Glu1Kernel : gateW.GluKernel,
            new MatMulPush(x, gateW.Values, gateW.Scales, gateBias, gate, upW.Values, upW.Scales, upBias, (uint)n, (uint)gateW.Rows, (uint)gateW.Columns, flags), n, gateW);
    }

    private void Launch(string kernel, in MatMulPush push, int n, GpuMatrix w)
    {
        // A profile tells the matrices apart by shape (the bandwidth each reaches); labels are made only then.
        var label = stream.Timing ? $"{kernel} {w.Rows}x{w.Columns}" : null;
        if (n >= TiledRows) stream.Dispatch(kernel, push, (long)((w.Rows + 63) / 64) * ((n + 63) / 64), label);
        else
        {
            var rowsPerGroup = n == 1 ? MatVecRows : BatchRows * (int)stream.MatVec.Subgroups;
            stream.Dispatch(kernel, push, (w.Rows + rowsPerGroup - 1) / rowsPerGroup, label);
        }
    }

    /// <summary>y[n, table.Columns] = table rows of tokens[n].</summary>
    public void Embed(ulong tokens, int n, GpuMatrix table, ulong y) =>
        stream.Dispatch(table.EmbedKernel, new EmbedPush(tokens, table.Values, table.Scales, y, (uint)n, (uint)table.Columns), n);

    public void RmsNorm(ulong x, int n, int width, ulong weight, float eps, ulong y) =>
        stream.Dispatch("rmsnorm", new RmsNormPush(x, weight, y, (uint)n, (uint)width, eps), n);

    /// <summary>Rotates x[n, heads, headDim] into y (x itself, or where the rows go: a KV cache).</summary>
    public void Rope(ulong x, int n, int heads, int headDim, ulong cos, ulong sin, ulong y) =>
        stream.Dispatch("rope", new RopePush(x, y, cos, sin, (uint)n, (uint)heads, (uint)headDim), ((long)n * heads * (headDim / 2) + 127) / 128);

    /// <summary>Positions one workgroup of the attention kernel scores (SPAN in attention.comp).</summary>
    public const int AttentionSpan = 256;

    /// <summary>Floats of scratch <see cref="Attention"/> needs for <paramref name="count"/> rows reaching position <paramref name="end"/>.</summary>
    public static long AttentionScratch(int count, int end, int heads, int headDim) =>
        (long)count * heads * ((end + AttentionSpan - 1) / AttentionSpan) * (headDim + 2);

    private static int Spans(int count, int first) => (first + count + AttentionSpan - 1) / AttentionSpan;

    /// <summary>
    /// First half of attention for rows at positions first .. first + count − 1 over the cache: each span of positions
    /// scored into <paramref name="scratch"/> (<see cref="AttentionScratch"/> floats). <see cref="AttentionMerge"/>,
    /// after a barrier, finishes it.
    /// </summary>
    public void AttentionSpans(ulong q, int count, int first, ulong keys, ulong values, int heads, int kvHeads, int headDim, int window, ulong scratch) =>
        stream.Dispatch("attention", new AttentionPush(q, keys, values, scratch, (uint)count, (uint)first, (uint)heads, (uint)kvHeads, (uint)headDim,
            (uint)Math.Max(0, window), (uint)Spans(count, first)), (long)count * heads * Spans(count, first));

    public void AttentionMerge(ulong scratch, int count, int first, int heads, int headDim, ulong output) =>
        stream.Dispatch("attention_merge", new MergePush(scratch, output, (uint)(count * heads), (uint)headDim, (uint)Spans(count, first)),
            ((long)count * heads * headDim + 127) / 128);

    public void SiluMul(ulong gate, ulong up, int count) => stream.Dispatch("silu_mul", new PairPush(gate, up, (uint)count), (count + 255) / 256);


    // Push constant blocks, field for field as each shader declares them.
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct MatMulPush(ulong X, ulong W, ulong Scales, ulong Bias, ulong Y, ulong W2, ulong Scales2, ulong Bias2,
        uint N, uint Rows, uint Cols, MatMulFlags Flags);

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct EmbedPush(ulong Tokens, ulong W, ulong Scales, ulong Y, uint N, uint Cols);

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct RmsNormPush(ulong X, ulong Weight, ulong Y, uint N, uint Width, float Eps);

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct RopePush(ulong X, ulong Y, ulong Cos, ulong Sin, uint N, uint Heads, uint HeadDim);

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct AttentionPush(ulong Q, ulong Keys, ulong Values, ulong Partials, uint Count, uint First, uint Heads, uint KvHeads, uint HeadDim, uint Window, uint Spans);

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct MergePush(ulong Partials, ulong Out, uint RowHeads, uint HeadDim, uint Spans);

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct PairPush(ulong A, ulong B, uint Count);
}
