using Exo.Inference.Model;
using Exo.Inference.Weights;
using Exo.Text.Templates;

namespace Exo.Inference.Conversion;

/// <summary>
/// A Hugging Face model folder laid out as the GGUF file llama.cpp's converter would write: its metadata keys, tensor
/// names, q/k interleaving for the llama architecture, 1-D tensors in F32, the tokenizer and the chat template.
/// Tensors are read from the mapped safetensors and encoded row by row as the file is written.
/// </summary>
public sealed class GgufConversion : IDisposable
{
    private readonly WeightFolder _weights;

    private GgufConversion(WeightFolder weights, GgufWriter writer, ModelConfig config, List<string> notes)
    {
        _weights = weights;
        Writer = writer;
        Config = config;
        Notes = notes;
    }

    public GgufWriter Writer { get; }
    public ModelConfig Config { get; }
    /// <summary>What the conversion had to change (tensors kept at a wider type, settings GGUF cannot hold).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>llama.cpp's general.file_type numbers (LLAMA_FTYPE_*) for a file whose matrices are of one type.</summary>
    public static uint FileType(DType type) => type switch
    {
        DType.F32 => 0,
        DType.F16 => 1,
        DType.Q4_0 => 2,
        DType.Q4_1 => 3,
        DType.Q8_0 => 7,
        DType.Q4_K => 15,
        DType.Q5_K => 17,
        DType.Q6_K => 18,
        DType.BF16 => 32,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    public static GgufConversion FromHuggingFace(string directory, DType type)
    {
        var config = ModelConfig.Load(directory);
        var weights = WeightFolder.Open(directory);
        try
        {
            var notes = new List<string>();
            var arch = config.ModelType == "mistral" ? "llama" : config.ModelType;
            if (config.SlidingWindows.Any(w => w > 0)) notes.Add("sliding-window attention is not stored in GGUF; the file attends to the whole context");
            var writer = new GgufWriter();
            WriteMetadata(writer, config, arch, type, directory);
            var interleave = StageWeights.GgufInterleavesQk(arch) ? config.HeadDim : 0;
            foreach (var (name, rotary) in StageWeights.TensorNames(config))
                AddTensor(writer, weights.Get(name), StageWeights.GgufTensorName(name)!, type, rotary ? interleave : 0, notes);
            if (config.Rope.Type == "llama3")
            {
                var factors = RotaryEmbedding.FrequencyFactors(config.Rope, config.HeadDim);
                writer.AddTensor(StageWeights.GgufRopeFactorsName, DType.F32, [factors.Length], (_, values) => factors.CopyTo(values));
            }

            return new GgufConversion(weights, writer, config, notes);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    internal static void WriteMetadata(GgufWriter writer, ModelConfig c, string arch, DType type, string directory)
    {
        string Key(string name) => $"{arch}.{name}";
        writer.Set("general.architecture", arch)
            .Set("general.name", Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory))))
            .Set("general.file_type", FileType(type))
            .Set("general.quantization_version", 2u)
            .Set(Key("vocab_size"), (uint)c.VocabSize)
            .Set(Key("context_length"), (uint)c.MaxPositionEmbeddings)
            .Set(Key("embedding_length"), (uint)c.HiddenSize)
            .Set(Key("block_count"), (uint)c.LayerCount)
            .Set(Key("feed_forward_length"), (uint)c.IntermediateSize)
            .Set(Key("attention.head_count"), (uint)c.HeadCount)
            .Set(Key("attention.head_count_kv"), (uint)c.KvHeadCount)
            .Set(Key("attention.key_length"), (uint)c.HeadDim)
            .Set(Key("attention.value_length"), (uint)c.HeadDim)
            .Set(Key("attention.layer_norm_rms_epsilon"), (float)c.RmsNormEps)
            .Set(Key("rope.dimension_count"), (uint)c.HeadDim)
            .Set(Key("rope.freq_base"), (float)c.Rope.Theta);
        if (c.Rope.Type == "linear")
            writer.Set(Key("rope.scaling.type"), "linear").Set(Key("rope.scaling.factor"), (float)c.Rope.Factor);

        GgufTokenizer.Write(directory, c.VocabSize, writer);
        if (ChatTemplate.DefaultSource(directory) is { } template) writer.Set(GgufTokenizer.ChatTemplate, template);
    }

    /// <summary>
    /// Adds one tensor: vectors stay F32 (as llama.cpp keeps them); a matrix whose rows are not whole blocks of the
    /// requested type falls back to Q8_0, then F16, as llama.cpp's quantizer does.
    /// </summary>
    private static void AddTensor(GgufWriter writer, Tensor source, string name, DType type, int interleaveHeadDim, List<string> notes)
    {
        var matrix = source.Shape.Length == 2;
        var target = !matrix ? DType.F32 : new[] { type, DType.Q8_0, DType.F16 }.First(t => source.Columns % DTypes.BlockSize(t) == 0);
        if (matrix && target != type) notes.Add($"{name}: rows of {source.Columns} are not whole {type} blocks; written as {target}");

        var columns = source.Columns;
        var headDim = interleaveHeadDim;
        if (matrix)
        {
            writer.AddTensor(name, target, source.Shape, (row, values) =>
                source.ReadRow(headDim > 0 ? StageWeights.DeinterleavedRow(row, headDim) : row, values));
        }
        else
        {
            var vector = source.ToArray();
            writer.AddTensor(name, target, [columns], (_, values) =>
            {
                for (var i = 0; i < values.Length; i++) values[i] = vector[headDim > 0 ? StageWeights.DeinterleavedRow(i, headDim) : i];
            });
        }
    }

    public void Dispose() => _weights.Dispose();
}
