using System.Text.Json;
using Exo.Api.OpenAi;
using Exo.Inference.Sampling;

namespace Exo.Api.Ollama;

/// <summary>
/// A request's <c>options</c> object in Ollama's terms, mapped onto the engine's sampling: temperature, top_k, top_p,
/// min_p, repeat_penalty, presence_penalty, frequency_penalty and seed; num_predict (absent, -1 or -2: until the context
/// ends); stop. Where a request leaves a sampler unset it gets Ollama's default (temperature 0.8, top_k 40, top_p 0.9),
/// but repeat_penalty defaults to 1 (off): the engine's penalty counts every token of the prompt and the completion,
/// not Ollama's last 64 (repeat_last_n), so Ollama's 1.1 would bite far harder here. Options that only tune Ollama's
/// own runtime (num_ctx, num_batch, num_gpu, num_thread, use_mmap, ...) are checked and ignored: the context is always
/// the model's own, and prompts are never truncated. Samplers the engine lacks (mirostat, typical_p, tfs_z) are refused
/// unless they are off. Errors name the field as <c>options.name</c>.
/// </summary>
internal sealed record OllamaSampling(SamplingParameters Parameters, int? MaxTokens, IReadOnlyList<string> Stop)
{
    public const float DefaultTemperature = 0.8f;
    public const int DefaultTopK = 40;
    public const float DefaultTopP = 0.9f;
    public const string MaxTokensParam = "options.num_predict";

    /// <summary>The most stop sequences one request may give.</summary>
    public const int MostStops = 16;

    private static readonly string[] RuntimeIntegers = ["num_ctx", "num_keep", "num_batch", "num_gpu", "main_gpu", "num_thread", "num_gqa", "repeat_last_n"];
    private static readonly string[] RuntimeBools = ["use_mmap", "use_mlock", "numa", "low_vram", "vocab_only", "f16_kv", "logits_all", "penalize_newline"];

    private static readonly JsonElement NoOptions = JsonDocument.Parse("{}").RootElement;

    /// <summary>Reads the <c>options</c> field's value (null when absent).</summary>
    public static OllamaSampling Read(JsonElement? options)
    {
        if (options is null) return Read(new RequestReader(NoOptions));
        if (options.Value.ValueKind != JsonValueKind.Object) throw OpenAiException.BadRequest("'options' must be an object", "options", "invalid_type");
        try
        {
            return Read(new RequestReader(options.Value));
        }
        catch (OpenAiException e)
        {
            throw OllamaErrors.Within(e, "options");
        }
    }

    private static OllamaSampling Read(RequestReader r)
    {
        foreach (var name in RuntimeIntegers) r.Integer(name, name == "num_ctx" ? 1 : -1, int.MaxValue);
        foreach (var name in RuntimeBools) r.Bool(name);
        Refuse(r, "mirostat", off: 0, "Mirostat sampling");
        Refuse(r, "typical_p", off: 1, "locally typical sampling");
        Refuse(r, "tfs_z", off: 1, "tail-free sampling");
        r.Number("mirostat_tau", double.MinValue, double.MaxValue);
        r.Number("mirostat_eta", double.MinValue, double.MaxValue);

        // -1 is Ollama's "until the context ends", -2 "fill the context": both are what no limit does here.
        var numPredict = r.Integer("num_predict", -2, int.MaxValue);
        if (numPredict == 0) throw OpenAiException.BadRequest("'num_predict' must be at least 1, or -1 (until the context ends)", "num_predict", "invalid_value");

        // A negative seed is Ollama's "random".
        var seed = r.Integer("seed", long.MinValue, long.MaxValue);
        var parameters = new SamplingParameters
        {
            Temperature = (float)(r.Number("temperature", 0, 100) ?? DefaultTemperature),
            TopK = (int)(r.Integer("top_k", 0, int.MaxValue) ?? DefaultTopK),
            TopP = (float)(r.Number("top_p", 0, 1) ?? DefaultTopP),
            MinP = (float)(r.Number("min_p", 0, 1) ?? 0),
            RepetitionPenalty = (float)(r.Number("repeat_penalty", 0.01, 100) ?? 1.0),
            FrequencyPenalty = (float)(r.Number("frequency_penalty", -2, 2) ?? 0),
            PresencePenalty = (float)(r.Number("presence_penalty", -2, 2) ?? 0),
            Seed = seed is { } s && s >= 0 ? (ulong)s : null,
        };
        if (parameters.TopP <= 0) throw OpenAiException.BadRequest("'top_p' must be greater than 0", "top_p", "invalid_value");
        return new OllamaSampling(parameters, numPredict > 0 ? (int)numPredict : null, r.Strings("stop", MostStops));
    }

    private static void Refuse(RequestReader r, string name, double off, string what)
    {
        if (r.Number(name, double.MinValue, double.MaxValue) is { } value && value != off)
            throw OpenAiException.BadRequest($"'{name}' is {value}, but {what} is not supported here; leave it out or set it to {off}", name, "unsupported_value");
    }
}
