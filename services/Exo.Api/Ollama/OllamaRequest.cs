using System.Text.Json;
using System.Text.RegularExpressions;
using Exo.Api.Models;
using Exo.Api.OpenAi;
using Exo.Inference.Sampling;

namespace Exo.Api.Ollama;

/// <summary>
/// The fields /api/chat and /api/generate share, validated: the model by its Ollama name (<see cref="Name"/>, as the
/// answers repeat it), <c>stream</c> (true unless false), <c>options</c>, <c>format</c> (the output constrained to JSON
/// or a schema), and <c>keep_alive</c> (a duration or seconds; models stay loaded here whatever it says, but a zero asks
/// to unload). <c>think</c> and <c>template</c> are refused unless neutral.
/// </summary>
internal sealed partial record OllamaRequest(string Name, ServedModel Model, bool Unload, GenerationOptions Options, OutputConstraint? Output)
{
    public static OllamaRequest Read(RequestReader r, ModelCatalog catalog)
    {
        var name = r.RequiredString("model");
        var stream = r.Bool("stream") ?? true;
        var unload = KeepAliveIsZero(r);
        var sampling = OllamaSampling.Read(r.Field("options"));
        var template = r.String("template");
        var model = OllamaModel.Find(catalog, name);

        var output = Format(r.Field("format"));
        RefuseThinking(r.Field("think"), name);
        if (!string.IsNullOrEmpty(template))
            throw OpenAiException.BadRequest("'template' is not supported: the model's own chat template renders prompts; to send a prompt rendered yourself, use /api/generate with raw: true",
                "template", "unsupported_value");

        var options = new GenerationOptions(model.Id, stream, IncludeUsage: false, sampling.MaxTokens, OllamaSampling.MaxTokensParam, sampling.Parameters, sampling.Stop, TopLogprobs: null);
        return new OllamaRequest(name, model, unload, options, output);
    }

    /// <summary>"json": any JSON object; a JSON schema object: a value matching it; both enforced by constrained decoding.</summary>
    private static OutputConstraint? Format(JsonElement? format) => format switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } empty when empty.GetString() == "" => null,
        { ValueKind: JsonValueKind.String } json when json.GetString() == "json" => new OutputConstraint("", null, ""),
        { ValueKind: JsonValueKind.Object } schema => new OutputConstraint("", schema.GetRawText(), ""),
        _ => throw OpenAiException.BadRequest("'format' must be \"json\" or a JSON schema object", "format", "invalid_value"),
    };

    /// <summary>No model served here thinks: think may be false (or absent), nothing else.</summary>
    private static void RefuseThinking(JsonElement? think, string name)
    {
        switch (think)
        {
            case null or { ValueKind: JsonValueKind.False }:
                return;
            case { ValueKind: JsonValueKind.True }:
            case { ValueKind: JsonValueKind.String } level when level.GetString() is "high" or "medium" or "low":
                throw OpenAiException.BadRequest($"'think': model '{name}' does not support thinking", "think", "unsupported_value");
            default:
                throw OpenAiException.BadRequest("'think' must be a boolean, or one of high, medium and low", "think", "invalid_value");
        }
    }

    /// <summary>Whether keep_alive is zero (unload now); a malformed one is a 400. Seconds as a number, or Go's durations ("5m", "1h30m", "-1").</summary>
    private static bool KeepAliveIsZero(RequestReader r)
    {
        switch (r.Field("keep_alive"))
        {
            case null:
                return false;
            case { ValueKind: JsonValueKind.Number } seconds when seconds.TryGetDouble(out var value):
                return value == 0;
            case { ValueKind: JsonValueKind.String } text when Duration().IsMatch(text.GetString()!):
                return !NonZeroDigit().IsMatch(text.GetString()!);
            default:
                throw OpenAiException.BadRequest("'keep_alive' must be a number of seconds or a duration such as \"5m\", \"1h30m\", \"0\" or \"-1\"", "keep_alive", "invalid_value");
        }
    }

    [GeneratedRegex(@"^[-+]?(\d+(\.\d*)?|\.\d+)((ns|us|µs|μs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))*)?$")]
    private static partial Regex Duration();

    [GeneratedRegex("[1-9]")]
    private static partial Regex NonZeroDigit();
}
