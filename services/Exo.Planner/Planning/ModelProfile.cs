using System.Text.Json;
using Exo.Inference;
using Exo.Inference.Model;
using Exo.Inference.Weights;

namespace Exo.Planner.Planning;

/// <summary>
/// The memory a model needs, and the work of decoding one token, in the terms the planner splits it by. Llama-family
/// decoder layers are all the same size, so one <see cref="LayerBytes"/> covers them; each layer also keeps a KV cache
/// for the planned context.
/// </summary>
/// <param name="HeadBytes">Final norm plus the lm head; with tied embeddings only the norm, as the last stage then maps the embedding matrix instead.</param>
/// <param name="TiedEmbeddings">The lm head is the embedding matrix, so the last stage holds <see cref="EmbeddingBytes"/> too.</param>
/// <param name="ContextTokens">Positions of KV cache each stage reserves per layer (all concurrent sequences together).</param>
/// <param name="EmbeddingRowBytes">One token's row of the embedding matrix: what the first stage reads of it per token.</param>
/// <param name="LayerOperations">Floating-point operations of one layer per decoded token (2 per weight); 0 when not known.</param>
/// <param name="HeadOperations">Floating-point operations of the lm head per decoded token; 0 when not known.</param>
public sealed record ModelProfile(
    string ModelId,
    int LayerCount,
    long LayerBytes,
    long EmbeddingBytes,
    long HeadBytes,
    bool TiedEmbeddings,
    long KvBytesPerTokenPerLayer,
    int ContextTokens,
    long EmbeddingRowBytes = 0,
    long LayerOperations = 0,
    long HeadOperations = 0)
{
    // The engine's KvCache keeps keys and values as f32.
    private const int KvElementBytes = sizeof(float);

    /// <summary>One layer's weights plus its KV cache for the planned context.</summary>
    public long LayerCostBytes => checked(LayerBytes + KvBytesPerTokenPerLayer * ContextTokens);

    /// <summary>The whole model on one machine.</summary>
    public long TotalBytes => checked(EmbeddingBytes + HeadBytes + LayerCount * LayerCostBytes);

    /// <summary>What a stage holds besides its layers: embeddings on the first, the head on the last (and the embeddings there too when tied).</summary>
    public long FixedBytes(bool first, bool last) =>
        (first || (last && TiedEmbeddings) ? EmbeddingBytes : 0) + (last ? HeadBytes : 0);

    /// <summary>
    /// Weight bytes a stage reads per decoded token: its layers, a row of embeddings on the first, the head on the last
    /// (with tied embeddings the whole embedding matrix, which is the head). KV cache reads grow with the context and are left out.
    /// </summary>
    public long StepReadBytes(int layers, bool first, bool last) =>
        layers * LayerBytes + (first ? EmbeddingRowBytes : 0) + (last ? HeadBytes + (TiedEmbeddings ? EmbeddingBytes : 0) : 0);

    /// <summary>Floating-point operations a stage does per decoded token: its layers, and the lm head on the last.</summary>
    public long StepOperations(int layers, bool last) => layers * LayerOperations + (last ? HeadOperations : 0);

    /// <summary>Rejects profiles that no real model has; profiles may arrive over the wire.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ModelId)) throw new ArgumentException("model profile: the model id is empty");
        string Where() => $"model profile '{ModelId}'";
        if (LayerCount <= 0) throw new ArgumentException($"{Where()}: layer count {LayerCount} must be positive");
        if (LayerBytes <= 0) throw new ArgumentException($"{Where()}: layer bytes {LayerBytes} must be positive");
        if (EmbeddingBytes < 0 || HeadBytes < 0 || KvBytesPerTokenPerLayer < 0 || ContextTokens < 0)
            throw new ArgumentException($"{Where()}: embedding, head and KV sizes and the context length must not be negative");
        if (EmbeddingRowBytes < 0 || EmbeddingRowBytes > EmbeddingBytes)
            throw new ArgumentException($"{Where()}: an embedding row of {EmbeddingRowBytes} bytes must be between 0 and the embedding matrix's {EmbeddingBytes}");
        if (LayerOperations < 0 || HeadOperations < 0) throw new ArgumentException($"{Where()}: layer and head operations must not be negative");
        try
        {
            // The largest sum planning forms: a one-stage ring of a tied model counts the embeddings once, a longer ring twice.
            _ = checked(TotalBytes + EmbeddingBytes);
            _ = checked(LayerCount * LayerOperations + HeadOperations);
        }
        catch (OverflowException)
        {
            throw new ArgumentException($"{Where()}: its sizes overflow 64 bits");
        }
    }

    /// <summary>
    /// Profiles a Hugging Face model folder from its config.json: parameter counts follow from the architecture, and
    /// the element size from the config's dtype or, when it names none, from the safetensors embedding matrix. With
    /// <paramref name="quantize"/>, every matrix whose rows are whole blocks counts at that type, as the engine then
    /// loads it; vectors stay as stored.
    /// </summary>
    /// <param name="contextTokens">KV positions to reserve per layer; the model's maximum context when not given.</param>
    public static ModelProfile FromModelDirectory(string directory, int? contextTokens = null, DType? quantize = null)
    {
        var config = ModelConfig.Load(directory);
        long elementBytes = ConfigElementBytes(directory) ?? SafetensorsElementBytes(directory);
        var context = contextTokens ?? config.MaxPositionEmbeddings;
        if (context < 0) throw new ArgumentOutOfRangeException(nameof(contextTokens), context, "the planned context must not be negative");

        long h = config.HiddenSize, ffn = config.IntermediateSize, q = config.QueryDim, kv = config.KvDim;
        long Matrix(long rows, long columns) => quantize is { } type && columns % DTypes.BlockSize(type) == 0
            ? checked(rows * DTypes.ByteCount(type, columns))
            : checked(rows * columns * elementBytes);
        var layerVectors =
            2 * h                                                 // input and post-attention norms
            + (config.QkvBias ? q + 2 * kv : 0)
            + (config.OutputBias ? h : 0)
            + (config.QkNorm ? 2L * config.HeadDim : 0)
            + (config.MlpBias ? 2 * ffn + h : 0);
        var layerMatrices =
            q * h + 2 * kv * h + h * q                            // q, k, v, o projections
            + 3 * ffn * h;                                        // gate, up, down
        var layerBytes = layerVectors * elementBytes
            + Matrix(q, h) + 2 * Matrix(kv, h) + Matrix(h, q)
            + 2 * Matrix(ffn, h) + Matrix(h, ffn);
        var embeddingBytes = Matrix(config.VocabSize, h);
        var headBytes = h * elementBytes + (config.TieWordEmbeddings ? 0 : embeddingBytes);

        var profile = new ModelProfile(
            Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory))),
            config.LayerCount,
            layerBytes,
            embeddingBytes,
            headBytes,
            config.TieWordEmbeddings,
            2 * kv * KvElementBytes,
            context,
            EmbeddingRowBytes: Matrix(1, h),
            // A multiply-add per weight of the matrices; norms and biases are a rounding error beside them.
            LayerOperations: 2 * (layerMatrices + layerVectors),
            HeadOperations: 2L * config.VocabSize * h);
        profile.Validate();
        return profile;
    }

    private static int? ConfigElementBytes(string directory)
    {
        var path = Path.Combine(directory, "config.json");
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            // transformers 5 writes "dtype", older versions "torch_dtype".
            foreach (var name in (ReadOnlySpan<string>)["dtype", "torch_dtype"])
            {
                if (!document.RootElement.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) continue;
                return value.ValueKind == JsonValueKind.String ? value.GetString() switch
                {
                    "float32" => 4,
                    "float16" or "bfloat16" => 2,
                    var other => throw new ModelFormatException($"{path}: {name} '{other}' is not supported (float32, float16, bfloat16)"),
                } : throw new ModelFormatException($"{path}: {name} must be a string");
            }

            return null;
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{path}: not valid JSON ({e.Message})", e);
        }
    }

    private static int SafetensorsElementBytes(string directory)
    {
        using var weights = WeightFolder.Open(directory);
        return DTypes.SizeOf(weights.Get("model.embed_tokens.weight").Type);
    }
}
