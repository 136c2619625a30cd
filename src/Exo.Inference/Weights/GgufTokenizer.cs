using Exo.Text.Tokenization;

namespace Exo.Inference.Weights;

/// <summary>
/// GGUF's embedded tokenizer: the tokenizer.ggml.* metadata keys that hold llama.cpp's description of a tokenizer
/// (<see cref="LlamaCppVocabulary"/>), read into a <see cref="Tokenizer"/> and written from a Hugging Face folder.
/// </summary>
internal static class GgufTokenizer
{
    public const string Model = "tokenizer.ggml.model";
    public const string Pre = "tokenizer.ggml.pre";
    public const string Tokens = "tokenizer.ggml.tokens";
    public const string Scores = "tokenizer.ggml.scores";
    public const string TokenTypes = "tokenizer.ggml.token_type";
    public const string Merges = "tokenizer.ggml.merges";
    public const string BosId = "tokenizer.ggml.bos_token_id";
    public const string EosId = "tokenizer.ggml.eos_token_id";
    public const string EotId = "tokenizer.ggml.eot_token_id";
    public const string EomId = "tokenizer.ggml.eom_token_id";
    public const string UnknownId = "tokenizer.ggml.unknown_token_id";
    public const string AddBos = "tokenizer.ggml.add_bos_token";
    public const string AddEos = "tokenizer.ggml.add_eos_token";
    public const string AddSpacePrefix = "tokenizer.ggml.add_space_prefix";
    public const string ChatTemplate = "tokenizer.chat_template";

    /// <summary>The tokenizer embedded in a GGUF file's metadata, with its special tokens.</summary>
    public static Tokenizer Read(GgufMetadata m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return Tokenizer.FromLlamaCppVocabulary(new LlamaCppVocabulary(
            m.String(Model),
            m.StringArray(Tokens),
            m.Contains(TokenTypes) ? m.IntArray(TokenTypes) : null,
            m.Contains(Scores) ? m.FloatArray(Scores) : null,
            m.Contains(Merges) ? m.StringArray(Merges) : null,
            m.OptionalString(Pre),
            m.OptionalInt(BosId),
            m.OptionalInt(EosId),
            m.OptionalInt(EotId),
            m.OptionalInt(EomId),
            m.OptionalInt(UnknownId),
            m.OptionalBool(AddBos),
            m.OptionalBool(AddEos),
            m.OptionalBool(AddSpacePrefix)));
    }

    /// <summary>Writes a Hugging Face folder's tokenizer as the metadata of a GGUF model with <paramref name="vocabSize"/> tokens.</summary>
    public static void Write(string directory, int vocabSize, GgufWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var v = LlamaCppVocabulary.FromModelDirectory(directory, vocabSize);

        void Optional(string key, object? value)
        {
            if (value is not null) writer.Set(key, value);
        }

        // GGUF stores token ids as uint32.
        writer.Set(Model, v.Model);
        Optional(UnknownId, (uint?)v.UnknownId);
        Optional(Scores, v.Scores);
        Optional(AddSpacePrefix, v.AddSpacePrefix);
        Optional(Pre, v.PreTokenizer);
        Optional(Merges, v.Merges);
        writer.Set(Tokens, v.Tokens);
        Optional(TokenTypes, v.TokenTypes);
        Optional(BosId, (uint?)v.BosId);
        Optional(EosId, (uint?)v.EosId);
        Optional(EotId, (uint?)v.EotId);
        Optional(EomId, (uint?)v.EomId);
        Optional(AddBos, v.AddBos);
        Optional(AddEos, v.AddEos);
    }
}
