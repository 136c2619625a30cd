using System.Text.Json;
using System.Text.Json.Nodes;
using Exo.Inference.Model;
using Exo.Inference.Sampling;
using Exo.Inference.Weights;
using Exo.Text.Tokenization;

namespace Exo.Inference.Conversion;

/// <summary>The shape of a random-weight Llama model (defaults: Llama 3.2 1B with a small vocabulary).</summary>
public sealed record SyntheticShape(int Dim = 2048, int Layers = 16, int Ffn = 8192, int Heads = 32, int KvHeads = 8, int Vocab = 32000,
    int Context = 4096, double RopeTheta = 500000, ulong Seed = 1);

/// <summary>
/// Writes a random-weight Llama-family model, as a Hugging Face folder (safetensors) or one GGUF file, with a
/// byte-level tokenizer and a chat template. Every row is generated from (seed, tensor, row) alone, so files of many
/// gigabytes are written streaming, never held in memory, and the same seed always gives the same bytes.
/// </summary>
public static class SyntheticModel
{
    private const string ChatTemplateSource =
        "{{ bos_token }}{% for m in messages %}<|start|>{{ m['role'] }}\n{{ m['content'] }}<|end|>\n{% endfor %}" +
        "{% if add_generation_prompt %}<|start|>assistant\n{% endif %}";
    private static readonly string[] Specials = ["<|bos|>", "<|eos|>", "<|start|>", "<|end|>"];

    public static ModelConfig Config(SyntheticShape s)
    {
        if (s.Dim <= 0 || s.Layers <= 0 || s.Ffn <= 0 || s.Heads <= 0 || s.KvHeads <= 0 || s.Dim % s.Heads != 0)
            throw new ArgumentException("dim, layers, ffn, heads and kv-heads must be positive, and dim a multiple of heads");
        if (s.Vocab < 256 + Specials.Length) throw new ArgumentException($"the vocabulary needs at least {256 + Specials.Length} tokens (bytes and specials)");
        using var document = JsonDocument.Parse(ConfigJson(s).ToJsonString());
        return ModelConfig.Parse(document.RootElement, "synthetic shape");
    }

    private static JsonObject ConfigJson(SyntheticShape s) => new()
    {
        ["model_type"] = "llama",
        ["architectures"] = new JsonArray("LlamaForCausalLM"),
        ["hidden_size"] = s.Dim,
        ["intermediate_size"] = s.Ffn,
        ["num_hidden_layers"] = s.Layers,
        ["num_attention_heads"] = s.Heads,
        ["num_key_value_heads"] = s.KvHeads,
        ["vocab_size"] = s.Vocab,
        ["max_position_embeddings"] = s.Context,
        ["rms_norm_eps"] = 1e-5,
        ["rope_theta"] = s.RopeTheta,
        ["tie_word_embeddings"] = false,
        ["hidden_act"] = "silu",
        ["bos_token_id"] = s.Vocab - Specials.Length,
        ["eos_token_id"] = s.Vocab - Specials.Length + 1,
        ["torch_dtype"] = "float16",
    };

    /// <summary>Writes the tokenizer and template files of a Hugging Face folder: byte tokens first, specials last.</summary>
    private static void WriteTokenizer(string directory, SyntheticShape s)
    {
        var vocab = new JsonObject();
        for (var b = 0; b < 256; b++) vocab[ByteLevelAlphabet.ToChar((byte)b).ToString()] = b;
        var added = new JsonArray();
        for (var i = 0; i < Specials.Length; i++)
        {
            var id = s.Vocab - Specials.Length + i;
            vocab[Specials[i]] = id;
            added.Add(new JsonObject { ["id"] = id, ["content"] = Specials[i], ["special"] = true });
        }

        var tokenizer = new JsonObject
        {
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray() },
            ["added_tokens"] = added,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
        };
        File.WriteAllText(Path.Combine(directory, "tokenizer.json"), tokenizer.ToJsonString());
        var config = new JsonObject { ["bos_token"] = Specials[0], ["eos_token"] = Specials[1], ["chat_template"] = ChatTemplateSource };
        File.WriteAllText(Path.Combine(directory, "tokenizer_config.json"), config.ToJsonString());
    }

    /// <summary>Fills a row with uniform values of standard deviation 1/√columns (norms are 1), from (seed, tensor, row).</summary>
    private static RowSource Rows(ulong seed, int tensor, bool norm) => (row, values) =>
    {
        if (norm)
        {
            values.Fill(1f);
            return;
        }

        var random = new Pcg32(seed * 0x9E3779B97F4A7C15UL ^ ((ulong)tensor << 32) ^ (uint)row);
        var scale = (float)(Math.Sqrt(3.0 / values.Length) * 2);
        for (var i = 0; i < values.Length; i++) values[i] = ((float)random.NextDouble() - 0.5f) * scale;
    };

    /// <summary>Every tensor (Hugging Face name, shape, row source) of the model.</summary>
    /// <summary>
    /// Every tensor (Hugging Face name, shape, row source) of the model; with <paramref name="interleaveHeadDim"/> &gt; 0
    /// q and k rows come in the GGUF llama layout, so both formats hold the same model.
    /// </summary>
    private static IEnumerable<(string Name, long[] Shape, RowSource Rows)> Tensors(ModelConfig c, ulong seed, int interleaveHeadDim = 0)
    {
        var index = 0;
        foreach (var (name, rotary) in StageWeights.TensorNames(c))
        {
            var shape = ShapeOf(c, name);
            var rows = Rows(seed, index++, shape.Length == 1);
            yield return (name, shape, rotary && interleaveHeadDim > 0
                ? (row, values) => rows(StageWeights.DeinterleavedRow(row, interleaveHeadDim), values)
                : rows);
        }
    }

    private static long[] ShapeOf(ModelConfig c, string name)
    {
        // Synthetic models are llama: no q/k norms, so every norm is [hidden].
        if (name.EndsWith("norm.weight", StringComparison.Ordinal)) return [c.HiddenSize];
        if (name is StageWeights.EmbedTokensName or StageWeights.LmHeadName) return [c.VocabSize, c.HiddenSize];
        return name switch
        {
            _ when name.EndsWith("q_proj.weight", StringComparison.Ordinal) => [c.QueryDim, c.HiddenSize],
            _ when name.EndsWith("k_proj.weight", StringComparison.Ordinal) || name.EndsWith("v_proj.weight", StringComparison.Ordinal) => [c.KvDim, c.HiddenSize],
            _ when name.EndsWith("o_proj.weight", StringComparison.Ordinal) => [c.HiddenSize, c.QueryDim],
            _ when name.EndsWith("down_proj.weight", StringComparison.Ordinal) => [c.HiddenSize, c.IntermediateSize],
            _ => [c.IntermediateSize, c.HiddenSize],
        };
    }

    /// <summary>A Hugging Face folder: config.json, one streaming-written model.safetensors, tokenizer files.</summary>
    public static void WriteHuggingFace(string directory, SyntheticShape shape, DType type, Action<int, int, string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (DTypes.IsQuantized(type)) throw new ArgumentException($"a Hugging Face folder holds f32, f16 or bf16, not {type}");
        var config = Config(shape);
        Directory.CreateDirectory(directory);
        var json = ConfigJson(shape);
        json["torch_dtype"] = type switch { DType.F32 => "float32", DType.BF16 => "bfloat16", _ => "float16" };
        File.WriteAllText(Path.Combine(directory, "config.json"), json.ToJsonString());
        WriteTokenizer(directory, shape);
        SafetensorsStream.Write(Path.Combine(directory, "model.safetensors"), type, Tensors(config, shape.Seed).ToList(), progress, cancellationToken);
    }

    /// <summary>One GGUF file, laid out as <see cref="GgufConversion"/> lays out a converted model.</summary>
    public static void WriteGguf(string path, SyntheticShape shape, DType type, Action<int, int, string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        var temporary = Directory.CreateTempSubdirectory("exo-synth-").FullName;
        try
        {
            // The tokenizer goes through the same HF-to-GGUF path as a converted model's.
            WriteTokenizer(temporary, shape);
            var config = Config(shape);
            var writer = new GgufWriter();
            GgufConversion.WriteMetadata(writer, config, "llama", type, temporary);
            writer.Set("general.name", "synthetic"); // not the temporary folder's random name: same seed, same bytes
            foreach (var (name, tensorShape, rows) in Tensors(config, shape.Seed, config.HeadDim))
                writer.AddTensor(StageWeights.GgufTensorName(name)!, tensorShape.Length == 1 ? DType.F32 : type, tensorShape, rows);

            writer.Write(path, progress, cancellationToken);
        }
        finally
        {
            Directory.Delete(temporary, recursive: true);
        }
    }
}
