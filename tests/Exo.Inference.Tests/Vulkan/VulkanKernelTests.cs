using System.Runtime.InteropServices;
using Exo.Inference.Kernels;
using Exo.Inference.Vulkan;
using Exo.Inference.Verification;
using Exo.Inference.Weights;

namespace Exo.Inference.Tests.Vulkan;

/// <summary>
/// Each GPU kernel against the f64 reference kernels on random inputs of awkward sizes: rows that are not multiples of
/// a workgroup's rows, batches that are not multiples of a pass, every weight type the shaders read.
/// </summary>
public sealed unsafe class VulkanKernelTests(GpuFixture gpu) : IClassFixture<GpuFixture>, IDisposable
{
    private const double Tolerance = 2e-5;

    private readonly VulkanDevice _device = gpu.Context.Device;
    private readonly CommandStream _stream = new(gpu.Context.Device, gpu.Context.Pipelines);
    private readonly List<GpuBuffer> _buffers = [];

    private static float[] RandomArray(Random random, int length) =>
        Enumerable.Range(0, length).Select(_ => random.NextSingle() * 2 - 1).ToArray();

    /// <summary>A host-visible buffer holding the values: kernels read and write it in place.</summary>
    private GpuBuffer Buffer<T>(T[] values) where T : unmanaged
    {
        var buffer = _device.Allocate(Math.Max(1, values.Length) * sizeof(T), hostVisible: true);
        _buffers.Add(buffer);
        values.CopyTo(buffer.Host<T>(0, values.Length));
        return buffer;
    }

    private GpuBuffer Output(int count) => Buffer(new float[count]);

    private static float[] Read(GpuBuffer buffer, int count) => buffer.Host<float>(0, count).ToArray();

    private void Run(Action<VulkanKernels> record, CommandStream? on = null)
    {
        var stream = on ?? _stream;
        record(new VulkanKernels(stream));
        stream.Barrier();
        stream.Run();
    }

    private static void Close(float[] expected, float[] actual, string what)
    {
        var error = ModelVerifier.RelativeError(actual, expected);
        Assert.True(error <= Tolerance, $"{what}: relative error {error:0.00e+0}");
    }

    /// <summary>A random [rows, columns] matrix quantized to <paramref name="type"/>: on the host for the reference, packed on the GPU.</summary>
    private (Tensor Host, GpuMatrix Gpu) RandomMatrix(Random random, NativeTensors store, int rows, int columns, DType type)
    {
        var host = store.Convert(store.Add("w", DType.F32, [rows, columns], MemoryMarshal.AsBytes(RandomArray(random, rows * columns).AsSpan())), type);
        using var staging = _device.Allocate(VulkanWeights.StagingBytes, hostVisible: true);
        var gpu = VulkanWeights.Upload(_device, _stream, staging, host);
        _buffers.Add(gpu.Buffer);
        return (host, gpu);
    }

    public static TheoryData<DType> WeightTypes => [DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q4_K, DType.Q6_K];

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void MatMulMatchesTheReferenceForEveryWeightType(DType type)
    {
        var random = new Random(17 + (int)type);
        using var store = new NativeTensors();
        var columns = DTypes.BlockSize(type) == 256 ? 512 : 96;
        foreach (var rows in new[] { 1, 67, 130 })
        {
            var (w, matrix) = RandomMatrix(random, store, rows, columns, type);
            var bias = RandomArray(random, rows);
            // Below TiledRows the matrix × vector kernel runs (a batch in passes of 8), from it on the tiled one; 70 is a
            // partial second tile.
            foreach (var n in new[] { 1, 3, 8, 11, VulkanKernels.TiledRows, 70 })
            {
                var x = RandomArray(random, n * columns);
                var expected = new float[n * rows];
                ReferenceKernels.Instance.MatMul(x, n, w, bias, expected);
                var (xs, bs, y) = (Buffer(x), Buffer(bias), Output(n * rows));
                Run(k => k.MatMul(xs.Address, n, matrix, bs.Address, y.Address));
                Close(expected, Read(y, n * rows), $"{type} [{rows}, {columns}] n={n}");

                // Without a bias the same products come out with none added.
                ReferenceKernels.Instance.MatMul(x, n, w, [], expected);
                Run(k => k.MatMul(xs.Address, n, matrix, 0, y.Address));
                Close(expected, Read(y, n * rows), $"{type} [{rows}, {columns}] n={n}, no bias");

                // Accumulating: the products, bias and all, added to what y held (the residual stream). Compared as
                // what was added, since a sum near zero would measure its cancellation rather than the kernel.
                var residual = RandomArray(random, n * rows);
                residual.CopyTo(y.Host<float>(0, residual.Length));
                ReferenceKernels.Instance.MatMul(x, n, w, bias, expected);
                Run(k => k.MatMul(xs.Address, n, matrix, bs.Address, y.Address, accumulate: true));
                var added = Read(y, n * rows).Zip(residual, (sum, before) => sum - before).ToArray();
                Close(expected, added, $"{type} [{rows}, {columns}] n={n}, accumulated");
            }
        }
    }

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void GatedUpMatchesTheReferenceForEveryWeightType(DType type)
    {
        var random = new Random(29 + (int)type);
        using var store = new NativeTensors();
        var columns = DTypes.BlockSize(type) == 256 ? 512 : 96;
        const int rows = 67;
        var (gateW, gate) = RandomMatrix(random, store, rows, columns, type);
        var (upW, up) = RandomMatrix(random, store, rows, columns, type);
        var (gateBias, upBias) = (RandomArray(random, rows), RandomArray(random, rows));
        // One pass over both matrices below TiledRows; from it on, two tiled products and silu·up.
        foreach (var n in new[] { 1, 3, 8, 11, VulkanKernels.TiledRows })
        {
            var x = RandomArray(random, n * columns);
            var (expected, upExpected) = (new float[n * rows], new float[n * rows]);
            var (xs, gbs, ubs, y, scratch) = (Buffer(x), Buffer(gateBias), Buffer(upBias), Output(n * rows), Output(n * rows));
            ReferenceKernels.Instance.MatMul(x, n, gateW, gateBias, expected);
            ReferenceKernels.Instance.MatMul(x, n, upW, upBias, upExpected);
            ReferenceKernels.Instance.SiluMul(expected, upExpected);
            Run(k => k.GatedUp(xs.Address, n, gate, gbs.Address, up, ubs.Address, y.Address, scratch.Address));
            Close(expected, Read(y, n * rows), $"{type} [{rows}, {columns}] n={n}");

            ReferenceKernels.Instance.MatMul(x, n, gateW, [], expected);
            ReferenceKernels.Instance.MatMul(x, n, upW, [], upExpected);
            ReferenceKernels.Instance.SiluMul(expected, upExpected);
            Run(k => k.GatedUp(xs.Address, n, gate, 0, up, 0, y.Address, scratch.Address));
            Close(expected, Read(y, n * rows), $"{type} [{rows}, {columns}] n={n}, no biases");
        }
    }

    /// <summary>
    /// A GPU's workgroups of the matrix × vector kernels have several subgroups (lavapipe's, one): rows long enough that
    /// each subgroup sums chunks of its own, and the sums of the subgroups added, match the reference too; a batch's
    /// subgroups, each taking its own rows through every share of the chunks from activations staged in shared memory,
    /// give each sequence the bits it gets alone. Rows not a multiple of a workgroup's (4 alone, 8 in a batch), batches
    /// of one pass, a partial pass and two. One weight type: what differs from one subgroup is none of dequantizing.
    /// </summary>
    [Fact]
    public void MatVecKernelsSplitARowOverSeveralSubgroups()
    {
        using var pipelines = new ComputePipelines(_device, MatVecLayout.Gpu);
        using var stream = new CommandStream(_device, pipelines);
        var random = new Random(41);
        using var store = new NativeTensors();
        const int rows = 67, columns = 1536, most = 11;
        var (gateW, gate) = RandomMatrix(random, store, rows, columns, DType.Q4_0);
        var (upW, up) = RandomMatrix(random, store, rows, columns, DType.Q4_0);
        var bias = RandomArray(random, rows);
        var x = RandomArray(random, most * columns);
        var bs = Buffer(bias);
        var (aloneY, aloneGated) = (new float[most * rows], new float[most * rows]);
        for (var i = 0; i < most; i++)
        {
            var (one, y, gated) = (Buffer(x[(i * columns)..((i + 1) * columns)]), Output(rows), Output(rows));
            Run(k => k.MatMul(one.Address, 1, gate, bs.Address, y.Address), stream);
            Run(k => k.GatedUp(one.Address, 1, gate, bs.Address, up, 0, gated.Address, 0), stream);
            Read(y, rows).CopyTo(aloneY, i * rows);
            Read(gated, rows).CopyTo(aloneGated, i * rows);
        }

        foreach (var n in new[] { 1, 3, 8, most })
        {
            var (expected, upExpected) = (new float[n * rows], new float[n * rows]);
            var (xs, y, gated) = (Buffer(x[..(n * columns)]), Output(n * rows), Output(n * rows));
            ReferenceKernels.Instance.MatMul(x.AsSpan(0, n * columns), n, gateW, bias, expected);
            Run(k => k.MatMul(xs.Address, n, gate, bs.Address, y.Address), stream);
            Close(expected, Read(y, n * rows), $"n={n}");
            Assert.Equal(aloneY[..(n * rows)], Read(y, n * rows));

            ReferenceKernels.Instance.MatMul(x.AsSpan(0, n * columns), n, upW, [], upExpected);
            ReferenceKernels.Instance.SiluMul(expected, upExpected);
            Run(k => k.GatedUp(xs.Address, n, gate, bs.Address, up, 0, gated.Address, 0), stream);
            Close(expected, Read(gated, n * rows), $"n={n}, gated");
            Assert.Equal(aloneGated[..(n * rows)], Read(gated, n * rows));
        }
    }

    [Fact]
    public void MatMulGivesEachRowTheSameBitsWhateverTheDecodeBatch()
    {
        var random = new Random(5);
        using var store = new NativeTensors();
        const int rows = 45, columns = 256;
        var (_, matrix) = RandomMatrix(random, store, rows, columns, DType.Q4_K);
        var x = RandomArray(random, 13 * columns);
        var (xs, all) = (Buffer(x), Output(13 * rows));
        Run(k => k.MatMul(xs.Address, 13, matrix, 0, all.Address));
        var batched = Read(all, 13 * rows);
        var (_, up) = RandomMatrix(random, store, rows, columns, DType.Q4_K);
        var gated = Output(13 * rows);
        Run(k => k.GatedUp(xs.Address, 13, matrix, 0, up, 0, gated.Address, 0));
        var gatedBatch = Read(gated, 13 * rows);
        for (var i = 0; i < 13; i++)
        {
            var (one, y) = (Buffer(x[(i * columns)..((i + 1) * columns)]), Output(rows));
            Run(k => k.MatMul(one.Address, 1, matrix, 0, y.Address));
            Assert.Equal(batched[(i * rows)..((i + 1) * rows)], Read(y, rows));
            Run(k => k.GatedUp(one.Address, 1, matrix, 0, up, 0, y.Address, 0));
            Assert.Equal(gatedBatch[(i * rows)..((i + 1) * rows)], Read(y, rows));
        }
    }

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void EmbedGathersDequantizedRows(DType type)
    {
        var random = new Random(3 + (int)type);
        using var store = new NativeTensors();
        const int vocab = 37;
        var columns = DTypes.BlockSize(type) == 256 ? 256 : 64;
        var (table, matrix) = RandomMatrix(random, store, vocab, columns, type);
        int[] tokens = [36, 0, 5, 5, 19];
        var expected = new float[tokens.Length * columns];
        ReferenceKernels.Instance.Embed(table, tokens, expected);
        var (ids, y) = (Buffer(tokens), Output(expected.Length));
        Run(k => k.Embed(ids.Address, tokens.Length, matrix, y.Address));
        Assert.Equal(expected, Read(y, expected.Length));
    }

    [Theory]
    [InlineData(7, 96)]
    [InlineData(3, 200)]
    [InlineData(5, 16)]
    public void RmsNormMatchesTheReference(int n, int width)
    {
        var random = new Random(n * width);
        var (x, weight) = (RandomArray(random, n * width), RandomArray(random, width));
        var expected = new float[n * width];
        ReferenceKernels.Instance.RmsNorm(x, n, weight, 1e-5f, expected);
        var (xs, ws, y) = (Buffer(x), Buffer(weight), Output(n * width));
        Run(k => k.RmsNorm(xs.Address, n, width, ws.Address, 1e-5f, y.Address));
        Close(expected, Read(y, n * width), "out of place");
        Run(k => k.RmsNorm(xs.Address, n, width, ws.Address, 1e-5f, xs.Address));
        Close(expected, Read(xs, n * width), "in place");
    }

    [Fact]
    public void RopeMatchesTheReference()
    {
        var random = new Random(11);
        const int n = 5, heads = 3, headDim = 48;
        var x = RandomArray(random, n * heads * headDim);
        var (cos, sin) = (RandomArray(random, n * headDim / 2), RandomArray(random, n * headDim / 2));
        var expected = x.ToArray();
        ReferenceKernels.Instance.Rope(expected, n, heads, headDim, cos, sin);
        var (xs, cs, ss, y) = (Buffer(x), Buffer(cos), Buffer(sin), Output(x.Length));
        Run(k => k.Rope(xs.Address, n, heads, headDim, cs.Address, ss.Address, y.Address));
        Close(expected, Read(y, x.Length), "rope into another buffer");
        Assert.Equal(x, Read(xs, x.Length));
        Run(k => k.Rope(xs.Address, n, heads, headDim, cs.Address, ss.Address, xs.Address));
        Close(expected, Read(xs, x.Length), "rope in place");
    }

    [Theory]
    [InlineData(1, 0, 0, 64)]       // the first token
    [InlineData(1, 300, 0, 128)]    // decode deep into the context: several tiles
    [InlineData(9, 4, 0, 48)]       // a prefill chunk after a cached prefix
    [InlineData(6, 40, 16, 256)]    // a sliding window, the widest head
    [InlineData(3, 700, 300, 64)]   // a window that starts inside the third span, rows across the span boundary
    [InlineData(300, 0, 0, 32)]     // a prefill longer than one span
    [InlineData(4, 33, 0, 20)]      // a head not a multiple of a subgroup: lanes without a dimension
    public void AttentionMatchesTheReference(int count, int first, int window, int headDim)
    {
        var random = new Random(count * 1000 + first);
        const int heads = 6, kvHeads = 2;
        var positions = first + count;
        var q = RandomArray(random, count * heads * headDim);
        var keys = RandomArray(random, positions * kvHeads * headDim);
        var values = RandomArray(random, positions * kvHeads * headDim);
        var expected = new float[count * heads * headDim];
        ReferenceKernels.Instance.Attention(q, count, first, keys, values, heads, kvHeads, headDim, window, new float[positions], expected);
        var (qs, ks, vs, y) = (Buffer(q), Buffer(keys), Buffer(values), Output(expected.Length));
        var scratch = Output((int)VulkanKernels.AttentionScratch(count, positions, heads, headDim));
        Run(k =>
        {
            k.AttentionSpans(qs.Address, count, first, ks.Address, vs.Address, heads, kvHeads, headDim, window, scratch.Address);
            k.Stream.Barrier();
            k.AttentionMerge(scratch.Address, count, first, heads, headDim, y.Address);
        });
        Close(expected, Read(y, expected.Length), "attention");
    }

    [Fact]
    public void SiluMulMatchesTheReference()
    {
        var random = new Random(2);
        const int count = 1000;
        var (gate, up) = (RandomArray(random, count), RandomArray(random, count));
        var expected = gate.ToArray();
        ReferenceKernels.Instance.SiluMul(expected, up);
        var (gs, us) = (Buffer(gate), Buffer(up));
        Run(k => k.SiluMul(gs.Address, us.Address, count));
        Close(expected, Read(gs, count), "silu·up");
    }

    [Fact]
    public void AnAbandonedRecordingNeverRuns()
    {
        // A step that fails midway leaves commands recorded: they must not run with the next submission.
        float[] values = [1, 2, 3, 4];
        var (source, destination) = (Buffer(values), Output(values.Length));
        _stream.Copy(source, 0, destination, 0, values.Length * sizeof(float));
        _stream.Abandon();
        _stream.Run();
        Assert.Equal(new float[values.Length], Read(destination, values.Length));

        Run(k => k.Stream.Copy(source, 0, destination, 0, values.Length * sizeof(float)));
        Assert.Equal(values, Read(destination, values.Length));
    }

    public void Dispose()
    {
        foreach (var b in _buffers) b.Dispose();
        _stream.Dispose();
    }
}
