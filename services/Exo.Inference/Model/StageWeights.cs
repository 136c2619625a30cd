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
/// lm head on the last. The checkpoint's tensor names live here and nowhere else.
/// </summary>
public sealed class StageWeights : IDisposable
{
    private readonly WeightFolder _folder;

    private StageWeights(WeightFolder folder, LayerRange layers, Tensor? embedTokens, LayerWeights[] layerWeights,
        float[]? finalNorm, Tensor? lmHead)
    {
        _folder = folder;
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
    public IReadOnlyCollection<string> MappedFiles => _folder.OpenedFiles;

    public static StageWeights Load(string modelDirectory, ModelConfig config, LayerRange layers)
    {
        layers.Validate(config.LayerCount);
        var folder = WeightFolder.Open(modelDirectory);
        try
        {
            var c = config;
            var first = layers.Start == 0;
            var last = layers.End == c.LayerCount;
            Tensor? embed = first || (last && c.TieWordEmbeddings) ? Matrix(folder, "model.embed_tokens.weight", c.VocabSize, c.HiddenSize) : null;

            var layerWeights = new LayerWeights[layers.Count];
            for (var i = layers.Start; i < layers.End; i++)
            {
                var p = $"model.layers.{i}.";
                layerWeights[i - layers.Start] = new LayerWeights(
                    InputNorm: Vector(folder, p + "input_layernorm.weight", c.HiddenSize),
                    QProj: Matrix(folder, p + "self_attn.q_proj.weight", c.QueryDim, c.HiddenSize),
                    KProj: Matrix(folder, p + "self_attn.k_proj.weight", c.KvDim, c.HiddenSize),
                    VProj: Matrix(folder, p + "self_attn.v_proj.weight", c.KvDim, c.HiddenSize),
                    OProj: Matrix(folder, p + "self_attn.o_proj.weight", c.HiddenSize, c.QueryDim),
                    QBias: c.QkvBias ? Vector(folder, p + "self_attn.q_proj.bias", c.QueryDim) : [],
                    KBias: c.QkvBias ? Vector(folder, p + "self_attn.k_proj.bias", c.KvDim) : [],
                    VBias: c.QkvBias ? Vector(folder, p + "self_attn.v_proj.bias", c.KvDim) : [],
                    OBias: c.OutputBias ? Vector(folder, p + "self_attn.o_proj.bias", c.HiddenSize) : [],
                    QNorm: c.QkNorm ? Vector(folder, p + "self_attn.q_norm.weight", c.HeadDim) : [],
                    KNorm: c.QkNorm ? Vector(folder, p + "self_attn.k_norm.weight", c.HeadDim) : [],
                    PostAttentionNorm: Vector(folder, p + "post_attention_layernorm.weight", c.HiddenSize),
                    GateProj: Matrix(folder, p + "mlp.gate_proj.weight", c.IntermediateSize, c.HiddenSize),
                    UpProj: Matrix(folder, p + "mlp.up_proj.weight", c.IntermediateSize, c.HiddenSize),
                    DownProj: Matrix(folder, p + "mlp.down_proj.weight", c.HiddenSize, c.IntermediateSize),
                    GateBias: c.MlpBias ? Vector(folder, p + "mlp.gate_proj.bias", c.IntermediateSize) : [],
                    UpBias: c.MlpBias ? Vector(folder, p + "mlp.up_proj.bias", c.IntermediateSize) : [],
                    DownBias: c.MlpBias ? Vector(folder, p + "mlp.down_proj.bias", c.HiddenSize) : []);
            }

            float[]? finalNorm = last ? Vector(folder, "model.norm.weight", c.HiddenSize) : null;
            Tensor? lmHead = !last ? null
                : c.TieWordEmbeddings ? embed
                : Matrix(folder, "lm_head.weight", c.VocabSize, c.HiddenSize);
            return new StageWeights(folder, layers, first ? embed : null, layerWeights, finalNorm, lmHead);
        }
        catch
        {
            folder.Dispose();
            throw;
        }
    }

    private static Tensor Matrix(WeightFolder folder, string name, int rows, int columns)
    {
        var tensor = folder.Get(name);
        if (tensor.Shape is not [var r, var k] || r != rows || k != columns)
            throw new ModelFormatException($"tensor '{name}' has shape [{string.Join(", ", tensor.Shape)}]; config.json implies [{rows}, {columns}]");
        return tensor;
    }

    private static float[] Vector(WeightFolder folder, string name, int length)
    {
        var tensor = folder.Get(name);
        if (tensor.Shape is not [var n] || n != length)
            throw new ModelFormatException($"tensor '{name}' has shape [{string.Join(", ", tensor.Shape)}]; config.json implies [{length}]");
        return tensor.ToArray();
    }

    public void Dispose() => _folder.Dispose();
}
