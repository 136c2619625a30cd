using Exo.Inference.Weights;

namespace Exo.Inference.Model;

/// <summary>One decoder layer's weights. Matrices stay memory-mapped; the small vectors are copied to f32 at load.</summary>
public sealed record LayerWeights(
    float[] InputNorm,          // [hidden]
    Tensor QProj,               // [heads * headDim, hidden]
    Tensor KProj,               // [kvHeads * headDim, hidden]
    Tensor VProj,               // [kvHeads * headDim, hidden]
    Tensor OProj,               // [hidden, heads * headDim]
    float[] QBias,              // [heads * headDim] or empty
    float[] KBias,              // [kvHeads * headDim] or empty
    float[] VBias,              // [kvHeads * headDim] or empty
    float[] OBias,              // [hidden] or empty
    float[] QNorm,              // [headDim] or empty
    float[] KNorm,              // [headDim] or empty
    float[] PostAttentionNorm,  // [hidden]
    Tensor GateProj,            // [ffn, hidden]
    Tensor UpProj,              // [ffn, hidden]
    Tensor DownProj,            // [hidden, ffn]
    float[] GateBias,           // [ffn] or empty
    float[] UpBias,             // [ffn] or empty
    float[] DownBias);          // [hidden] or empty

/// <summary>
/// The weights one pipeline stage needs: its layers, plus the embeddings on the first stage and the final norm and
/// lm head on the last. The checkpoint's tensor names live here and nowhere else: Hugging Face names, and the
/// llama.cpp names GGUF files use for them.
/// </summary>
public sealed class StageWeights : IDisposable
{
    private readonly IWeightSource _source;
    private readonly NativeTensors _owned;

    private StageWeights(IWeightSource source, NativeTensors owned, LayerRange layers, Tensor? embedTokens, LayerWeights[] layerWeights,
        float[]? finalNorm, Tensor? lmHead)
    {
        _source = source;
        _owned = owned;
        Layers = layers;
        EmbedTokens = embedTokens;
        LayerWeights = layerWeights;
        FinalNorm = finalNorm;
        LmHead = lmHead;
    }

    public LayerRange Layers { get; }
    public Tensor? EmbedTokens { get; }       // [vocab, hidden], first stage only
    public LayerWeights[] LayerWeights { get; } // one per layer of the range
    public float[]? FinalNorm { get; }         // [hidden], last stage only
    public Tensor? LmHead { get; }             // [vocab, hidden], last stage only (the embeddings when tied)

    /// <summary>
    /// Weight bytes one decode step reads: every matrix and vector of the stage except the embedding table, of which a
    /// token gathers a single row (a tied table still counts once, as the lm head).
    /// </summary>
    public long BytesPerToken
    {
        get
        {
            long bytes = (FinalNorm?.Length ?? 0) * sizeof(float) + (LmHead?.ByteLength ?? 0);
            foreach (var l in LayerWeights)
            {
                foreach (var m in new[] { l.QProj, l.KProj, l.VProj, l.OProj, l.GateProj, l.UpProj, l.DownProj }) bytes += m.ByteLength;
                foreach (var v in new[] { l.InputNorm, l.QBias, l.KBias, l.VBias, l.OBias, l.QNorm, l.KNorm, l.PostAttentionNorm, l.GateBias, l.UpBias, l.DownBias })
                    bytes += v.Length * sizeof(float);
            }

            return bytes;
        }
    }

    /// <summary>The weight files this stage mapped.</summary>
    public IReadOnlyCollection<string> MappedFiles => _source.OpenedFiles;

    /// <summary>Bytes of weights held in anonymous memory (re-laid-out or quantized at load) rather than mapped.</summary>
    public long AnonymousBytes => _owned.Bytes;

    public const string EmbedTokensName = "model.embed_tokens.weight";
    public const string FinalNormName = "model.norm.weight";
    public const string LmHeadName = "lm_head.weight";

    /// <summary>
    /// Whether a stage running <paramref name="layers"/> of a model of <paramref name="layerCount"/> layers reads the
    /// tensor of Hugging Face name <paramref name="name"/>: its layers' tensors, the embeddings on the first stage (and on
    /// the last when the head is tied to them), the final norm and the head on the last. What a stage fetches follows this.
    /// </summary>
    public static bool Reads(string name, LayerRange layers, int layerCount, bool tiedEmbeddings)
    {
        bool first = layers.Start == 0, last = layers.End == layerCount;
        switch (name)
        {
            case EmbedTokensName: return first || (last && tiedEmbeddings);
            case FinalNormName or LmHeadName: return last;
        }

        const string prefix = "model.layers.";
        if (!name.StartsWith(prefix, StringComparison.Ordinal)) return false;
        var dot = name.IndexOf('.', prefix.Length);
        return dot > 0 && int.TryParse(name.AsSpan(prefix.Length, dot - prefix.Length), System.Globalization.NumberStyles.None, null, out var layer)
            && layer >= layers.Start && layer < layers.End;
    }

    /// <summary>Hugging Face name of layer <paramref name="layer"/>'s tensor <paramref name="suffix"/> (e.g. "self_attn.q_proj.weight").</summary>
    public static string LayerTensorName(int layer, string suffix) => $"model.layers.{layer}.{suffix}";

    // Hugging Face layer tensor suffixes and the llama.cpp names of the same tensors.
    private static readonly Dictionary<string, string> GgufLayerNames = new(StringComparer.Ordinal)
    {
        ["input_layernorm.weight"] = "attn_norm.weight",
        ["self_attn.q_proj.weight"] = "attn_q.weight",
        ["self_attn.k_proj.weight"] = "attn_k.weight",
        ["self_attn.v_proj.weight"] = "attn_v.weight",
        ["self_attn.o_proj.weight"] = "attn_output.weight",
        ["self_attn.q_proj.bias"] = "attn_q.bias",
        ["self_attn.k_proj.bias"] = "attn_k.bias",
        ["self_attn.v_proj.bias"] = "attn_v.bias",
        ["self_attn.o_proj.bias"] = "attn_output.bias",
        ["self_attn.q_norm.weight"] = "attn_q_norm.weight",
        ["self_attn.k_norm.weight"] = "attn_k_norm.weight",
        ["post_attention_layernorm.weight"] = "ffn_norm.weight",
        ["mlp.gate_proj.weight"] = "ffn_gate.weight",
        ["mlp.up_proj.weight"] = "ffn_up.weight",
        ["mlp.down_proj.weight"] = "ffn_down.weight",
        ["mlp.gate_proj.bias"] = "ffn_gate.bias",
        ["mlp.up_proj.bias"] = "ffn_up.bias",
        ["mlp.down_proj.bias"] = "ffn_down.bias",
    };

    /// <summary>The llama.cpp (GGUF) name of a Hugging Face tensor, or null for tensors llama.cpp has no name for.</summary>
    public static string? GgufTensorName(string name)
    {
        switch (name)
        {
            case EmbedTokensName: return "token_embd.weight";
            case FinalNormName: return "output_norm.weight";
            case LmHeadName: return "output.weight";
        }

        const string prefix = "model.layers.";
        if (!name.StartsWith(prefix, StringComparison.Ordinal)) return null;
        var dot = name.IndexOf('.', prefix.Length);
        if (dot < 0 || !int.TryParse(name.AsSpan(prefix.Length, dot - prefix.Length), out var layer)) return null;
        return GgufLayerNames.TryGetValue(name[(dot + 1)..], out var suffix) ? $"blk.{layer}.{suffix}" : null;
    }

    /// <summary>The GGUF tensor holding llama3-style rope frequency factors.</summary>
    public const string GgufRopeFactorsName = "rope_freqs.weight";

    /// <summary>
    /// llama.cpp's converter stores the q and k rows of the llama architecture with each head's two halves interleaved
    /// (rows i and i + headDim/2 of a Hugging Face head become rows 2i and 2i + 1), so that its rope rotates adjacent
    /// pairs. This is the GGUF row that holds Hugging Face row <paramref name="row"/>.
    /// </summary>
    public static int InterleavedRow(int row, int headDim)
    {
        int head = row / headDim, j = row % headDim, half = headDim / 2;
        return head * headDim + 2 * (j % half) + j / half;
    }

    /// <summary>The inverse of <see cref="InterleavedRow"/>: the Hugging Face row stored at GGUF row <paramref name="row"/>.</summary>
    public static int DeinterleavedRow(int row, int headDim)
    {
        int head = row / headDim, j = row % headDim;
        return head * headDim + j % 2 * (headDim / 2) + j / 2;
    }

    /// <summary>Whether a GGUF file of this architecture holds q and k in the interleaved layout.</summary>
    public static bool GgufInterleavesQk(string architecture) => architecture == "llama";

    /// <summary>Every tensor a whole model of this configuration has, by Hugging Face name, with whether it is a rotary (q or k) one.</summary>
    public static IEnumerable<(string Name, bool Rotary)> TensorNames(ModelConfig c)
    {
        yield return (EmbedTokensName, false);
        for (var i = 0; i < c.LayerCount; i++)
        {
            foreach (var (suffix, present) in new[]
            {
                ("input_layernorm.weight", true), ("self_attn.q_proj.weight", true), ("self_attn.k_proj.weight", true),
                ("self_attn.v_proj.weight", true), ("self_attn.o_proj.weight", true),
                ("self_attn.q_proj.bias", c.QkvBias), ("self_attn.k_proj.bias", c.QkvBias), ("self_attn.v_proj.bias", c.QkvBias),
                ("self_attn.o_proj.bias", c.OutputBias), ("self_attn.q_norm.weight", c.QkNorm), ("self_attn.k_norm.weight", c.QkNorm),
                ("post_attention_layernorm.weight", true), ("mlp.gate_proj.weight", true), ("mlp.up_proj.weight", true),
                ("mlp.down_proj.weight", true), ("mlp.gate_proj.bias", c.MlpBias), ("mlp.up_proj.bias", c.MlpBias), ("mlp.down_proj.bias", c.MlpBias),
            })
            {
                if (present) yield return (LayerTensorName(i, suffix), suffix.StartsWith("self_attn.q_proj", StringComparison.Ordinal) || suffix.StartsWith("self_attn.k_proj", StringComparison.Ordinal));
            }
        }

        yield return (FinalNormName, false);
        if (!c.TieWordEmbeddings) yield return (LmHeadName, false);
    }

    /// <summary>
    /// Loads a stage from a Hugging Face folder or a GGUF file. With <paramref name="quantize"/>, every weight matrix
    /// whose rows are whole blocks is quantized once into anonymous memory (the mapped originals are then never read).
    /// Otherwise matrices are re-quantized to the type and copied into the layout that <paramref name="kernels"/> prefer
    /// for their stored type (<see cref="IWeightPreferences.PreferredType"/>, <see cref="IWeightPreferences.PreferredLayout"/>), when not
    /// the stored ones.
    /// </summary>
    public static StageWeights Load(string modelPath, ModelConfig config, LayerRange layers, DType? quantize = null, IWeightPreferences? kernels = null)
    {
        layers.Validate(config.LayerCount);
        var gguf = ModelPath.IsGguf(modelPath);
        IWeightSource source = gguf ? GgufFile.Open(modelPath) : WeightFolder.Open(modelPath);
        var owned = new NativeTensors();
        try
        {
            var c = config;
            var file = new Names(source, gguf, gguf && GgufInterleavesQk(c.ModelType) ? c.HeadDim : 0, owned, quantize, kernels);
            var first = layers.Start == 0;
            var last = layers.End == c.LayerCount;
            Tensor? embed = first || (last && c.TieWordEmbeddings) ? file.Matrix(EmbedTokensName, c.VocabSize, c.HiddenSize) : null;

            var layerWeights = new LayerWeights[layers.Count];
            for (var i = layers.Start; i < layers.End; i++)
            {
                string P(string suffix) => LayerTensorName(i, suffix);
                layerWeights[i - layers.Start] = new LayerWeights(
                    InputNorm: file.Vector(P("input_layernorm.weight"), c.HiddenSize),
                    QProj: file.Matrix(P("self_attn.q_proj.weight"), c.QueryDim, c.HiddenSize, rotary: true),
                    KProj: file.Matrix(P("self_attn.k_proj.weight"), c.KvDim, c.HiddenSize, rotary: true),
                    VProj: file.Matrix(P("self_attn.v_proj.weight"), c.KvDim, c.HiddenSize),
                    OProj: file.Matrix(P("self_attn.o_proj.weight"), c.HiddenSize, c.QueryDim),
                    QBias: c.QkvBias ? file.Vector(P("self_attn.q_proj.bias"), c.QueryDim, rotary: true) : [],
                    KBias: c.QkvBias ? file.Vector(P("self_attn.k_proj.bias"), c.KvDim, rotary: true) : [],
                    VBias: c.QkvBias ? file.Vector(P("self_attn.v_proj.bias"), c.KvDim) : [],
                    OBias: c.OutputBias ? file.Vector(P("self_attn.o_proj.bias"), c.HiddenSize) : [],
                    QNorm: c.QkNorm ? file.Vector(P("self_attn.q_norm.weight"), c.HeadDim) : [],
                    KNorm: c.QkNorm ? file.Vector(P("self_attn.k_norm.weight"), c.HeadDim) : [],
                    PostAttentionNorm: file.Vector(P("post_attention_layernorm.weight"), c.HiddenSize),
                    GateProj: file.Matrix(P("mlp.gate_proj.weight"), c.IntermediateSize, c.HiddenSize),
                    UpProj: file.Matrix(P("mlp.up_proj.weight"), c.IntermediateSize, c.HiddenSize),
                    DownProj: file.Matrix(P("mlp.down_proj.weight"), c.HiddenSize, c.IntermediateSize),
                    GateBias: c.MlpBias ? file.Vector(P("mlp.gate_proj.bias"), c.IntermediateSize) : [],
                    UpBias: c.MlpBias ? file.Vector(P("mlp.up_proj.bias"), c.IntermediateSize) : [],
                    DownBias: c.MlpBias ? file.Vector(P("mlp.down_proj.bias"), c.HiddenSize) : []);
            }

            float[]? finalNorm = last ? file.Vector(FinalNormName, c.HiddenSize) : null;
            Tensor? lmHead = !last ? null
                : c.TieWordEmbeddings ? embed
                : file.Matrix(LmHeadName, c.VocabSize, c.HiddenSize);
            return new StageWeights(source, owned, layers, first ? embed : null, layerWeights, finalNorm, lmHead);
        }
        catch
        {
            owned.Dispose();
            source.Dispose();
            throw;
        }
    }

    /// <summary>Looks tensors up by their Hugging Face names in either kind of file, checking shapes against the config.</summary>
    private sealed unsafe class Names(IWeightSource source, bool gguf, int interleavedHeadDim, NativeTensors owned, DType? quantize,
        IWeightPreferences? kernels)
    {
        private Tensor Get(string name) =>
            source.Get(gguf ? GgufTensorName(name) ?? throw new InvalidOperationException($"no GGUF name for {name}") : name);

        /// <summary>A [rows, columns] matrix; rotary (q, k) rows are brought back to the Hugging Face layout when the file interleaves them.</summary>
        public Tensor Matrix(string name, int rows, int columns, bool rotary = false)
        {
            var mapped = Get(name);
            var tensor = Copied(mapped, rows, columns, rotary).WithFiniteScan();
            // A matrix copied into anonymous memory hands its mapped pages back, so that it is not resident twice.
            if (tensor.Pointer != mapped.Pointer) source.Release(mapped);
            return tensor;
        }

        /// <summary>The mapped matrix itself, or a copy re-ordered, quantized or interleaved as the load asks.</summary>
        private Tensor Copied(Tensor tensor, int rows, int columns, bool rotary)
        {
            if (tensor.Shape is not [var r, var k] || r != rows || k != columns)
                throw new ModelFormatException($"tensor '{tensor.Name}' has shape [{string.Join(", ", tensor.Shape)}]; the model's config implies [{rows}, {columns}]");
            var headDim = interleavedHeadDim;
            Func<int, int>? sourceRow = rotary && headDim > 0 ? row => InterleavedRow(row, headDim) : null;
            if ((quantize ?? kernels?.PreferredType(tensor.Type)) is { } q && tensor.Type != q && columns % DTypes.BlockSize(q) == 0)
            {
                if (sourceRow is not null) tensor = owned.Permuted(tensor, sourceRow);
                sourceRow = null;
                tensor = Replace(tensor, owned.Convert(tensor, q));
            }

            if (kernels?.PreferredLayout(tensor.Type) == TensorLayout.Interleaved && InterleavedRows.Supports(tensor.Type, rows, columns))
                return Replace(tensor, owned.Interleaved(tensor, sourceRow));
            return sourceRow is null ? tensor : owned.Permuted(tensor, sourceRow);
        }

        /// <summary>The copy, with an intermediate copy it was made from freed: only one copy of a matrix stays.</summary>
        private Tensor Replace(in Tensor intermediate, Tensor copy)
        {
            owned.Free(intermediate);
            return copy;
        }

        public float[] Vector(string name, int length, bool rotary = false)
        {
            var tensor = Get(name);
            if (tensor.Shape is not [var n] || n != length)
                throw new ModelFormatException($"tensor '{tensor.Name}' has shape [{string.Join(", ", tensor.Shape)}]; the model's config implies [{length}]");
            var values = tensor.ToArray();
            if (!rotary || interleavedHeadDim == 0) return values;
            var headDim = interleavedHeadDim;
            return Enumerable.Range(0, length).Select(i => values[InterleavedRow(i, headDim)]).ToArray();
        }
    }

    public void Dispose()
    {
        _source.Dispose();
        _owned.Dispose();
    }
}
