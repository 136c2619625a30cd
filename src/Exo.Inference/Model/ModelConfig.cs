using System.Text.Json;

namespace Exo.Inference.Model;

/// <summary>How positions rotate queries and keys: the base and, for long-context models, a frequency rescaling.</summary>
public sealed record RopeConfig(
    double Theta,
    string Type,
    double Factor = 1.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 0,
    float[]? FrequencyFactors = null)
{
    /// <summary>Type of a rope whose inverse frequencies are divided by per-dimension factors (GGUF's rope_freqs tensor).</summary>
    public const string FactorsType = "factors";
}

/// <summary>
/// The architecture of a Llama-family checkpoint, read from its config.json. One record covers llama, mistral, qwen2
/// and qwen3: they differ only in the flags below.
/// </summary>
public sealed partial record ModelConfig
{
    public static readonly IReadOnlySet<string> SupportedModelTypes = new HashSet<string> { "llama", "mistral", "qwen2", "qwen3" };
    private static readonly IReadOnlySet<string> SupportedRopeTypes = new HashSet<string> { "default", "linear", "llama3" };

    public required string ModelType { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int LayerCount { get; init; }
    public required int HeadCount { get; init; }
    public required int KvHeadCount { get; init; }
    public required int HeadDim { get; init; }
    public required int VocabSize { get; init; }
    public required double RmsNormEps { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    public required bool TieWordEmbeddings { get; init; }
    /// <summary>Bias on the q, k and v projections (qwen2 always; llama/qwen3 with attention_bias).</summary>
    public required bool QkvBias { get; init; }
    /// <summary>Bias on the output projection (llama/qwen3 attention_bias; never qwen2).</summary>
    public required bool OutputBias { get; init; }
    public required bool MlpBias { get; init; }
    /// <summary>RMS norm of each query and key head before rotation (qwen3).</summary>
    public required bool QkNorm { get; init; }
    public required RopeConfig Rope { get; init; }
    /// <summary>Per layer: the attention window in positions, or 0 for full causal attention.</summary>
    public required int[] SlidingWindows { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    public int QueryDim => HeadCount * HeadDim;
    public int KvDim => KvHeadCount * HeadDim;

    /// <summary>The file a Hugging Face model folder keeps its config in.</summary>
    public const string FileName = "config.json";

    public static ModelConfig Load(string modelDirectory)
    {
        var path = Path.Combine(modelDirectory, FileName);
        if (!File.Exists(path)) throw new ModelFormatException($"{path}: missing (is this a Hugging Face model folder?)");
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            return Parse(document.RootElement, path);
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{path}: not valid JSON ({e.Message})", e);
        }
    }

    public static ModelConfig Parse(JsonElement root, string source = "config.json")
    {
        if (root.ValueKind != JsonValueKind.Object) throw new ModelFormatException($"{source}: not a JSON object");
        var reader = new Reader(root, source);

        var modelType = reader.String("model_type") ?? throw new ModelFormatException($"{source}: no model_type");
        if (!SupportedModelTypes.Contains(modelType))
        {
            throw new ModelFormatException(
                $"{source}: model_type '{modelType}' is not supported (supported: {string.Join(", ", SupportedModelTypes)})");
        }

        var activation = reader.String("hidden_act") ?? "silu";
        if (activation != "silu") throw new ModelFormatException($"{source}: hidden_act '{activation}' is not supported (only silu)");

        var hidden = reader.RequiredInt("hidden_size");
        var heads = reader.RequiredInt("num_attention_heads");
        var kvHeads = reader.Int("num_key_value_heads") ?? heads;
        var headDim = reader.Int("head_dim") ?? (hidden % heads == 0 ? hidden / heads
            : throw new ModelFormatException($"{source}: hidden_size {hidden} is not a multiple of num_attention_heads {heads} and no head_dim is given"));
        CheckHeads(source, heads, kvHeads, headDim);

        var layers = reader.RequiredInt("num_hidden_layers");
        var attentionBias = reader.Bool("attention_bias") ?? false;
        var maxPositions = reader.Int("max_position_embeddings") ?? 2048;

        return new ModelConfig
        {
            ModelType = modelType,
            HiddenSize = hidden,
            IntermediateSize = reader.RequiredInt("intermediate_size"),
            LayerCount = layers,
            HeadCount = heads,
            KvHeadCount = kvHeads,
            HeadDim = headDim,
            VocabSize = reader.RequiredInt("vocab_size"),
            RmsNormEps = reader.Double("rms_norm_eps") ?? 1e-6,
            MaxPositionEmbeddings = maxPositions,
            TieWordEmbeddings = reader.Bool("tie_word_embeddings") ?? false,
            QkvBias = modelType == "qwen2" || attentionBias,
            OutputBias = modelType != "qwen2" && attentionBias,
            MlpBias = modelType == "llama" && (reader.Bool("mlp_bias") ?? false),
            QkNorm = modelType == "qwen3",
            Rope = ParseRope(reader, source),
            SlidingWindows = ParseSlidingWindows(reader, modelType, layers, source),
            BosTokenId = reader.IntOrFirst("bos_token_id"),
            EosTokenIds = reader.IntList("eos_token_id"),
        };
    }

    private static void CheckHeads(string source, int heads, int kvHeads, int headDim)
    {
        if (kvHeads <= 0 || heads % kvHeads != 0)
            throw new ModelFormatException($"{source}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");
        if (headDim <= 0 || headDim % 2 != 0) throw new ModelFormatException($"{source}: head dimension {headDim} must be even and positive for rotary embeddings");
        // Products of untrusted sizes size every buffer: bound them before any int arithmetic can wrap.
        if (heads <= 0 || headDim > 4096 || (long)heads * headDim > 1 << 20)
            throw new ModelFormatException($"{source}: {heads} heads of dimension {headDim} is not a plausible attention shape");
    }

    private static RopeConfig ParseRope(Reader reader, string source)
    {
        // transformers 5 keeps theta and scaling together in rope_parameters; older files use rope_theta + rope_scaling.
        var parameters = reader.Object("rope_parameters");
        var scaling = parameters ?? reader.Object("rope_scaling");
        var theta = parameters?.Double("rope_theta") ?? reader.Double("rope_theta") ?? 10000.0;
        if (!(theta > 0) || !double.IsFinite(theta)) throw new ModelFormatException($"{source}: rope_theta {theta} must be a positive number");
        if (scaling is null) return new RopeConfig(theta, "default");

        var type = scaling.String("rope_type") ?? scaling.String("type") ?? "default";
        if (!SupportedRopeTypes.Contains(type))
        {
            throw new ModelFormatException(
                $"{source}: rope scaling type '{type}' is not supported (supported: {string.Join(", ", SupportedRopeTypes)})");
        }

        if (type == "default") return new RopeConfig(theta, type);
        var factor = scaling.Double("factor") ?? throw new ModelFormatException($"{source}: rope scaling '{type}' needs a factor");
        if (factor < 1) throw new ModelFormatException($"{source}: rope scaling factor {factor} must be at least 1");
        if (type == "linear") return new RopeConfig(theta, type, factor);

        var low = scaling.Double("low_freq_factor") ?? throw new ModelFormatException($"{source}: llama3 rope scaling needs low_freq_factor");
        var high = scaling.Double("high_freq_factor") ?? throw new ModelFormatException($"{source}: llama3 rope scaling needs high_freq_factor");
        var original = scaling.Int("original_max_position_embeddings")
                       ?? throw new ModelFormatException($"{source}: llama3 rope scaling needs original_max_position_embeddings");
        if (high <= low) throw new ModelFormatException($"{source}: llama3 rope scaling needs high_freq_factor > low_freq_factor");
        return new RopeConfig(theta, type, factor, low, high, original);
    }

    private static int[] ParseSlidingWindows(Reader reader, string modelType, int layers, string source)
    {
        var windows = new int[layers];
        var window = reader.Int("sliding_window");
        if (window is null or <= 0) return windows;

        var layerTypes = reader.StringList("layer_types");
        if (layerTypes is not null)
        {
            if (layerTypes.Count != layers) throw new ModelFormatException($"{source}: layer_types has {layerTypes.Count} entries for {layers} layers");
            for (var i = 0; i < layers; i++) windows[i] = layerTypes[i] == "sliding_attention" ? window.Value : 0;
        }
        else if (modelType == "mistral")
        {
            Array.Fill(windows, window.Value);
        }
        else if (reader.Bool("use_sliding_window") == true)
        {
            // Qwen: layers from max_window_layers on use the window.
            var first = reader.Int("max_window_layers") ?? 0;
            for (var i = first; i < layers; i++) windows[i] = window.Value;
        }

        return windows;
    }

    /// <summary>Typed, validating access to a JSON object's fields.</summary>
    private sealed class Reader(JsonElement element, string source)
    {
        private JsonElement? Field(string name) =>
            element.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

        public string? String(string name) => Field(name) switch
        {
            null => null,
            { ValueKind: JsonValueKind.String } v => v.GetString(),
            _ => throw new ModelFormatException($"{source}: {name} must be a string"),
        };

        public bool? Bool(string name) => Field(name) switch
        {
            null => null,
            { ValueKind: JsonValueKind.True } => true,
            { ValueKind: JsonValueKind.False } => false,
            _ => throw new ModelFormatException($"{source}: {name} must be true or false"),
        };

        public double? Double(string name) => Field(name) switch
        {
            null => null,
            { ValueKind: JsonValueKind.Number } v => v.GetDouble(),
            _ => throw new ModelFormatException($"{source}: {name} must be a number"),
        };

        public int? Int(string name) => Field(name) switch
        {
            null => null,
            { ValueKind: JsonValueKind.Number } v when v.TryGetInt32(out var i) && i >= 0 => i,
            _ => throw new ModelFormatException($"{source}: {name} must be a non-negative integer"),
        };

        public int RequiredInt(string name) =>
            Int(name) is { } value and > 0 ? value : throw new ModelFormatException($"{source}: {name} must be a positive integer");

        public int? IntOrFirst(string name) => IntList(name) is [var first, ..] ? first : null;

        public IReadOnlyList<int> IntList(string name) => Field(name) switch
        {
            null => [],
            { ValueKind: JsonValueKind.Array } v => v.EnumerateArray().Select(e => e.TryGetInt32(out var i) ? i
                : throw new ModelFormatException($"{source}: {name} must hold integers")).ToArray(),
            _ => [Int(name)!.Value],
        };

        public IReadOnlyList<string>? StringList(string name) => Field(name) switch
        {
            null => null,
            { ValueKind: JsonValueKind.Array } v => v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()!
                : throw new ModelFormatException($"{source}: {name} must hold strings")).ToArray(),
            _ => throw new ModelFormatException($"{source}: {name} must be a list"),
        };

        public Reader? Object(string name) => Field(name) switch
        {
            null => null,
            { ValueKind: JsonValueKind.Object } v => new Reader(v, $"{source} {name}"),
            _ => throw new ModelFormatException($"{source}: {name} must be an object"),
        };
    }
}
