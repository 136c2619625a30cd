using Exo.Inference.Weights;

namespace Exo.Inference.Model;

public sealed partial record ModelConfig
{
    /// <summary>The GGUF architectures (general.architecture) this engine runs; mistral is converted as llama.</summary>
    public static readonly IReadOnlySet<string> SupportedGgufArchitectures = new HashSet<string> { "llama", "qwen2", "qwen3" };

    /// <summary>Reads the configuration of a model folder, or of a GGUF file from its metadata.</summary>
    public static ModelConfig LoadAny(string modelPath)
    {
        if (!ModelPath.IsGguf(modelPath)) return Load(modelPath);
        using var file = GgufFile.Open(modelPath);
        return FromGguf(file);
    }

    /// <summary>
    /// The architecture from llama.cpp's metadata keys ({arch}.embedding_length, ...). Which biases and norms exist is
    /// read from the tensors present, since GGUF has no flags for them.
    /// </summary>
    public static ModelConfig FromGguf(GgufFile file)
    {
        var m = file.Metadata;
        var source = file.Path;
        var arch = m.String("general.architecture");
        if (!SupportedGgufArchitectures.Contains(arch))
        {
            throw new ModelFormatException(
                $"{source}: architecture '{arch}' is not supported (supported: {string.Join(", ", SupportedGgufArchitectures)})");
        }

        string Key(string name) => $"{arch}.{name}";
        bool Has(string hfName) => file.Contains(StageWeights.GgufTensorName(hfName)!);

        var hidden = Positive(m.Int(Key("embedding_length")), Key("embedding_length"), source);
        var heads = Positive(m.Int(Key("attention.head_count")), Key("attention.head_count"), source);
        var kvHeads = m.OptionalInt(Key("attention.head_count_kv")) ?? heads;
        var headDim = m.OptionalInt(Key("attention.key_length")) ?? (hidden % heads == 0 ? hidden / heads
            : throw new ModelFormatException($"{source}: embedding_length {hidden} is not a multiple of head_count {heads} and no key_length is given"));
        CheckHeads(source, heads, kvHeads, headDim);
        if (m.OptionalInt(Key("attention.value_length")) is { } valueLength && valueLength != headDim)
            throw new ModelFormatException($"{source}: value_length {valueLength} differs from key_length {headDim} (not supported)");
        if (m.OptionalInt(Key("rope.dimension_count")) is { } ropeDims && ropeDims != headDim)
            throw new ModelFormatException($"{source}: rope.dimension_count {ropeDims} differs from the head dimension {headDim} (partial rotary is not supported)");

        var embed = file.Get(StageWeights.GgufTensorName(StageWeights.EmbedTokensName)!);
        if (embed.Shape is not [var vocab, _]) throw new ModelFormatException($"{source}: token_embd.weight is not a matrix");
        var layers = Positive(m.Int(Key("block_count")), Key("block_count"), source);

        var eos = new List<int>();
        foreach (var key in new[] { "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id" })
        {
            if (m.OptionalInt(key) is { } id && !eos.Contains(id)) eos.Add(id);
        }

        return new ModelConfig
        {
            ModelType = arch,
            HiddenSize = hidden,
            IntermediateSize = Positive(m.Int(Key("feed_forward_length")), Key("feed_forward_length"), source),
            LayerCount = layers,
            HeadCount = heads,
            KvHeadCount = kvHeads,
            HeadDim = headDim,
            VocabSize = checked((int)vocab),
            RmsNormEps = m.OptionalFloat(Key("attention.layer_norm_rms_epsilon")) ?? 1e-6,
            MaxPositionEmbeddings = m.OptionalInt(Key("context_length")) ?? 2048,
            TieWordEmbeddings = !Has(StageWeights.LmHeadName),
            QkvBias = Has(StageWeights.LayerTensorName(0, "self_attn.q_proj.bias")),
            OutputBias = Has(StageWeights.LayerTensorName(0, "self_attn.o_proj.bias")),
            MlpBias = Has(StageWeights.LayerTensorName(0, "mlp.up_proj.bias")),
            QkNorm = Has(StageWeights.LayerTensorName(0, "self_attn.q_norm.weight")),
            Rope = GgufRope(file, Key, headDim),
            SlidingWindows = new int[layers],
            BosTokenId = m.OptionalInt("tokenizer.ggml.bos_token_id"),
            EosTokenIds = eos,
        };
    }

    private static int Positive(int value, string key, string source) =>
        value > 0 ? value : throw new ModelFormatException($"{source}: metadata '{key}' must be positive");

    private static RopeConfig GgufRope(GgufFile file, Func<string, string> key, int headDim)
    {
        var m = file.Metadata;
        var theta = m.OptionalFloat(key("rope.freq_base")) ?? 10000.0;
        if (!(theta > 0) || !double.IsFinite(theta)) throw new ModelFormatException($"{file.Path}: rope.freq_base {theta} must be a positive number");
        if (file.Contains(StageWeights.GgufRopeFactorsName))
        {
            var factors = file.Get(StageWeights.GgufRopeFactorsName).ToArray();
            if (factors.Length != headDim / 2 || factors.Any(f => !(f > 0) || float.IsInfinity(f)))
                throw new ModelFormatException($"{file.Path}: {StageWeights.GgufRopeFactorsName} must hold {headDim / 2} positive factors");
            return new RopeConfig(theta, RopeConfig.FactorsType, FrequencyFactors: factors);
        }

        var type = m.OptionalString(key("rope.scaling.type")) ?? "none";
        switch (type)
        {
            case "none":
                return new RopeConfig(theta, "default");
            case "linear":
                var factor = m.Float(key("rope.scaling.factor"));
                return factor >= 1 ? new RopeConfig(theta, "linear", factor)
                    : throw new ModelFormatException($"{file.Path}: rope.scaling.factor {factor} must be at least 1");
            default:
                throw new ModelFormatException($"{file.Path}: rope scaling '{type}' is not supported (none, linear, or rope_freqs factors)");
        }
    }
}
