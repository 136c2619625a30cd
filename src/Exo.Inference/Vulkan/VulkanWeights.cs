using Exo.Inference.Model;
using Exo.Inference.Weights;

namespace Exo.Inference.Vulkan;

/// <summary>One decoder layer's weights on the GPU; vectors are addresses into the stage's vector buffer, 0 when absent.</summary>
internal sealed record GpuLayer(
    ulong InputNorm, GpuMatrix QProj, GpuMatrix KProj, GpuMatrix VProj, GpuMatrix OProj,
    ulong QBias, ulong KBias, ulong VBias, ulong OBias, ulong QNorm, ulong KNorm, ulong PostAttentionNorm,
    GpuMatrix GateProj, GpuMatrix UpProj, GpuMatrix DownProj, ulong GateBias, ulong UpBias, ulong DownBias);

/// <summary>
/// A stage's weights uploaded once to the GPU: each matrix in its own buffer, packed so that the shaders read whole
/// 16-byte quads (quantized blocks split into values and f16 scales where GGUF's blocks are not 16-byte multiples), and
/// every norm weight and bias in one buffer of f32. The host's copy can be released once this is built.
/// </summary>
internal sealed unsafe class VulkanWeights : IDisposable
{
    /// <summary>The types the shaders read; others are converted at load (by the loader, to Q8_0).</summary>
    public static readonly IWeightPreferences Preferences = new GpuPreferences();

    internal const long StagingBytes = 64L << 20;
    private readonly List<GpuBuffer> _buffers = [];

    public VulkanWeights(VulkanDevice device, CommandStream stream, StageWeights weights)
    {
        try
        {
            using var staging = device.Allocate(StagingBytes, hostVisible: true);
            var vectors = new VectorUpload();
            Layers = weights.LayerWeights.Select(l => new GpuLayer(
                vectors.Add(l.InputNorm), Matrix(l.QProj), Matrix(l.KProj), Matrix(l.VProj), Matrix(l.OProj),
                vectors.Add(l.QBias), vectors.Add(l.KBias), vectors.Add(l.VBias), vectors.Add(l.OBias),
                vectors.Add(l.QNorm), vectors.Add(l.KNorm), vectors.Add(l.PostAttentionNorm),
                Matrix(l.GateProj), Matrix(l.UpProj), Matrix(l.DownProj), vectors.Add(l.GateBias), vectors.Add(l.UpBias), vectors.Add(l.DownBias))).ToArray();
            EmbedTokens = weights.EmbedTokens is { } embed ? Matrix(embed) : null;
            FinalNorm = weights.FinalNorm is { } norm ? vectors.Add(norm) : 0;
            // A tied lm head is the embedding table: uploaded once.
            LmHead = weights.LmHead is not { } head ? null
                : EmbedTokens is not null && weights.EmbedTokens!.Value.Pointer == head.Pointer ? EmbedTokens
                : Matrix(head);

            var vectorBuffer = device.Allocate(vectors.Bytes, hostVisible: false);
            _buffers.Add(vectorBuffer);
            vectors.Upload(vectorBuffer, staging, stream);
            Layers = Layers.Select(l => vectors.Resolve(l, vectorBuffer.Address)).ToArray();
            FinalNorm = vectors.Resolve(FinalNorm, vectorBuffer.Address);

            GpuMatrix Matrix(in Tensor t)
            {
                var m = Upload(device, stream, staging, t);
                _buffers.Add(m.Buffer);
                return m;
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public GpuLayer[] Layers { get; }
    public GpuMatrix? EmbedTokens { get; }
    public ulong FinalNorm { get; }
    public GpuMatrix? LmHead { get; }

    /// <summary>Bytes of one packed row: the values part and the scales part.</summary>
    private static (int Values, int Scales) RowBytes(DType type, int columns)
    {
        var blocks = columns / DTypes.BlockSize(type);
        return type switch
        {
            DType.F32 or DType.F16 or DType.BF16 or DType.Q4_K => ((int)DTypes.ByteCount(type, columns), 0),
            DType.Q8_0 => (blocks * 32, blocks * 2),
            DType.Q4_0 => (blocks * 16, blocks * 2),
            DType.Q6_K => (blocks * 208, blocks * 2),
            _ => throw new ModelFormatException($"the GPU kernels do not read {type} weights"),
        };
    }

    internal static GpuMatrix Upload(VulkanDevice device, CommandStream stream, GpuBuffer staging, in Tensor t)
    {
        if (t.Layout != TensorLayout.Rows) throw new InvalidOperationException($"{t.Name} is not in the row layout the GPU upload reads");
        if (t.Columns % 32 != 0 || (DTypes.IsQuantized(t.Type) && t.Columns % DTypes.BlockSize(t.Type) != 0))
            throw new ModelFormatException($"{t.Name}: rows of {t.Columns} values are not whole 32-value chunks, which the GPU kernels read; run with --backend cpu");
        var (valueRow, scaleRow) = RowBytes(t.Type, t.Columns);
        var valuesBytes = (long)t.Rows * valueRow;
        var scalesOffset = (valuesBytes + 15) & ~15L;
        var buffer = device.Allocate(scalesOffset + ((long)t.Rows * scaleRow + 3 & ~3L), hostVisible: false);
        try
        {
            var rowsPerPass = (int)Math.Min(t.Rows, StagingBytes / (valueRow + scaleRow));
            for (var r0 = 0; r0 < t.Rows; r0 += rowsPerPass)
            {
                var n = Math.Min(rowsPerPass, t.Rows - r0);
                var values = staging.Host<byte>(0, n * valueRow);
                var scales = staging.Host<byte>((long)n * valueRow, n * scaleRow);
                for (var r = 0; r < n; r++)
                    Pack(t.Type, t.RowBytes(r0 + r), values.Slice(r * valueRow, valueRow), scales.Slice(r * scaleRow, scaleRow));
                stream.Copy(staging, 0, buffer, (long)r0 * valueRow, (long)n * valueRow);
                stream.Copy(staging, (long)n * valueRow, buffer, scalesOffset + (long)r0 * scaleRow, (long)n * scaleRow);
                stream.Run();
            }
        }
        catch
        {
            buffer.Dispose();
            throw;
        }

        return new GpuMatrix(buffer, t.Type, t.Rows, t.Columns, scalesOffset);
    }

    /// <summary>Splits one GGUF row into the packed values and scales weights.glsl reads.</summary>
    private static void Pack(DType type, ReadOnlySpan<byte> row, Span<byte> values, Span<byte> scales)
    {
        // (bytes per GGUF block, offset of its f16 scale, offset and length of its values)
        var (block, scale, valueAt, valueLength) = type switch
        {
            DType.Q8_0 => (34, 0, 2, 32),
            DType.Q4_0 => (18, 0, 2, 16),
            DType.Q6_K => (210, 208, 0, 208),
            _ => (0, 0, 0, 0),
        };
        if (block == 0)
        {
            row.CopyTo(values);
            return;
        }

        for (var b = 0; b < row.Length / block; b++)
        {
            var source = row.Slice(b * block, block);
            source.Slice(valueAt, valueLength).CopyTo(values.Slice(b * valueLength, valueLength));
            source.Slice(scale, 2).CopyTo(scales.Slice(b * 2, 2));
        }
    }

    /// <summary>
    /// Norm weights and biases gathered into one buffer: each is given a placeholder (its offset + 1) while the layers
    /// are built, and resolved to an address once the buffer exists. Absent (empty) vectors stay 0.
    /// </summary>
    private sealed class VectorUpload
    {
        private readonly List<float[]> _vectors = [];

        public long Bytes { get; private set; }

        public ulong Add(float[] v)
        {
            if (v.Length == 0) return 0;
            _vectors.Add(v);
            var placeholder = (ulong)Bytes + 1;
            Bytes += ((long)v.Length * sizeof(float) + 15) & ~15L;
            return placeholder;
        }

        public ulong Resolve(ulong placeholder, ulong address) => placeholder == 0 ? 0 : address + placeholder - 1;

        public GpuLayer Resolve(GpuLayer l, ulong a) => l with
        {
            InputNorm = Resolve(l.InputNorm, a), QBias = Resolve(l.QBias, a), KBias = Resolve(l.KBias, a), VBias = Resolve(l.VBias, a),
            OBias = Resolve(l.OBias, a), QNorm = Resolve(l.QNorm, a), KNorm = Resolve(l.KNorm, a), PostAttentionNorm = Resolve(l.PostAttentionNorm, a),
            GateBias = Resolve(l.GateBias, a), UpBias = Resolve(l.UpBias, a), DownBias = Resolve(l.DownBias, a),
        };

        public void Upload(GpuBuffer destination, GpuBuffer staging, CommandStream stream)
        {
            long at = 0, staged = 0, stagedFrom = 0;
            foreach (var v in _vectors)
            {
                var bytes = ((long)v.Length * sizeof(float) + 15) & ~15L;
                if (staged + bytes > staging.Size)
                {
                    stream.Copy(staging, 0, destination, stagedFrom, staged);
                    stream.Run();
                    stagedFrom = at;
                    staged = 0;
                }

                v.CopyTo(staging.Host<float>(staged, v.Length));
                staged += bytes;
                at += bytes;
            }

            stream.Copy(staging, 0, destination, stagedFrom, staged);
            stream.Run();
        }
    }

    private sealed class GpuPreferences : IWeightPreferences
    {
        public DType PreferredType(DType type) => type is DType.Q4_1 or DType.Q5_K ? DType.Q8_0 : type;

        public TensorLayout PreferredLayout(DType type) => TensorLayout.Rows;
    }

    public void Dispose()
    {
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
    }
}
