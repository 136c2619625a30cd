using System.Text.Json;
using Exo.Inference.Sampling;
using Exo.Text.ToolCalls;

namespace Exo.Api.OpenAi;

/// <summary>
/// What chat and text completions share once validated. <paramref name="MaxTokensParam"/> is the field that set
/// <paramref name="MaxTokens"/> (max_tokens or max_completion_tokens), for errors; null when it is the default.
/// </summary>
internal sealed record GenerationOptions(
    string Model,
    bool Stream,
    bool IncludeUsage,
    int? MaxTokens,
    string? MaxTokensParam,
    SamplingParameters Sampling,
    IReadOnlyList<string> Stop,
    int? TopLogprobs,
    int Choices = 1)
{
    /// <summary>Most choices (n) one request may ask for: each runs as its own generation.</summary>
    public const int MostChoices = 16;

    public static GenerationOptions Read(RequestReader r, int defaultMaxTokens, bool chat)
    {
        var model = r.RequiredString("model");
        var n = (int)(r.Integer("n", 1, MostChoices) ?? 1);

        var stream = r.Bool("stream") ?? false;
        var includeUsage = false;
        if (r.Field("stream_options") is { } streamOptions)
        {
            if (!stream) throw OpenAiException.BadRequest("'stream_options' is only allowed when 'stream' is true", "stream_options");
            if (streamOptions.ValueKind != JsonValueKind.Object) throw OpenAiException.BadRequest("'stream_options' must be an object", "stream_options", "invalid_type");
            includeUsage = new RequestReader(streamOptions).Bool("include_usage") ?? false;
        }

        // max_completion_tokens supersedes max_tokens in the chat API; both are accepted.
        var maxTokensParam = r.Field("max_completion_tokens") is not null ? "max_completion_tokens" : r.Field("max_tokens") is not null ? "max_tokens" : null;
        var maxTokens = (int?)(maxTokensParam is null ? null : r.Integer(maxTokensParam, 1, int.MaxValue));
        if (!chat) maxTokens ??= defaultMaxTokens;

        int? topLogprobs;
        if (chat)
        {
            var logprobs = r.Bool("logprobs") ?? false;
            var top = (int?)r.Integer("top_logprobs", 0, TokenLogprobs.MaxTop);
            if (top is not null && !logprobs) throw OpenAiException.BadRequest("'top_logprobs' requires 'logprobs' to be true", "top_logprobs");
            topLogprobs = logprobs ? top ?? 0 : null;
        }
        else
        {
            topLogprobs = (int?)r.Integer("logprobs", 0, 5);
        }

        var seed = r.Integer("seed", long.MinValue, long.MaxValue);
        var sampling = new SamplingParameters
        {
            Temperature = (float)(r.Number("temperature", 0, 2) ?? 1.0),
            TopP = (float)(r.Number("top_p", 0, 1) ?? 1.0),
            TopK = (int)(r.Integer("top_k", 0, int.MaxValue) ?? 0),
            MinP = (float)(r.Number("min_p", 0, 1) ?? 0),
            RepetitionPenalty = (float)(r.Number("repetition_penalty", 0.01, 100) ?? 1.0),
            FrequencyPenalty = (float)(r.Number("frequency_penalty", -2, 2) ?? 0),
            PresencePenalty = (float)(r.Number("presence_penalty", -2, 2) ?? 0),
            Seed = seed is { } s ? unchecked((ulong)s) : null,
            LogitBias = LogitBias(r),
        };
        if (sampling.TopP <= 0) throw OpenAiException.BadRequest("'top_p' must be greater than 0", "top_p", "invalid_value");

        return new GenerationOptions(model, stream, includeUsage, maxTokens, maxTokensParam, sampling, r.Strings("stop", 4), topLogprobs, n);
    }

    /// <summary>OpenAI's logit_bias: token ids (as strings) to a bias in [-100, 100]; checked against the vocabulary once the model is known.</summary>
    private static Dictionary<int, float>? LogitBias(RequestReader r)
    {
        if (r.Field("logit_bias") is not { } field) return null;
        if (field.ValueKind != JsonValueKind.Object) throw OpenAiException.BadRequest("'logit_bias' must be an object of token ids to biases", "logit_bias", "invalid_type");
        var bias = new Dictionary<int, float>();
        foreach (var entry in field.EnumerateObject())
        {
            if (bias.Count == SamplingParameters.MostBiasedTokens) throw OpenAiException.BadRequest($"'logit_bias' may name at most {SamplingParameters.MostBiasedTokens} tokens", "logit_bias", "invalid_value");
            if (!int.TryParse(entry.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var token))
                throw OpenAiException.BadRequest($"'logit_bias' key '{entry.Name}' is not a token id", "logit_bias", "invalid_value");
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetDouble(out var value) || value < -100 || value > 100)
                throw OpenAiException.BadRequest($"'logit_bias' for token {token} must be a number between -100 and 100", "logit_bias", "invalid_value");
            bias[token] = (float)value;
        }

        return bias.Count == 0 ? null : bias;
    }
}

/// <summary>
/// A validated POST /v1/chat/completions body: <paramref name="ToolsJson"/> as the template sees them, <paramref name="Tools"/>
/// as the answer is read for calls, and the output the response_format asks for.
/// </summary>
internal sealed record ChatCompletionRequest(
    GenerationOptions Options,
    JsonElement Messages,
    JsonElement? ToolsJson,
    ChatTools Tools,
    OutputConstraint? Format,
    IReadOnlyDictionary<string, object?> TemplateArguments)
{
    private static readonly HashSet<string> Roles = ["system", "developer", "user", "assistant", "tool"];

    public static ChatCompletionRequest Parse(JsonElement body)
    {
        var r = new RequestReader(body);
        var options = GenerationOptions.Read(r, 0, chat: true);
        if (r.Field("messages") is not { ValueKind: JsonValueKind.Array } messages || messages.GetArrayLength() == 0)
            throw OpenAiException.BadRequest("'messages' must be a non-empty array", "messages", "invalid_value");

        var tools = ChatTools.Parse(r);
        var format = ResponseFormat.Parse(r);
        if (format is not null && tools.Forced is not null)
            throw OpenAiException.BadRequest("a forced tool call (tool_choice 'required' or a function) is its own format; it cannot be combined with a JSON 'response_format'", "response_format", "invalid_value");

        // chat_template_kwargs (as vLLM names it) reach the template, e.g. enable_thinking.
        var arguments = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (r.Field("chat_template_kwargs") is { } kwargs)
        {
            if (kwargs.ValueKind != JsonValueKind.Object) throw OpenAiException.BadRequest("'chat_template_kwargs' must be an object", "chat_template_kwargs", "invalid_type");
            foreach (var p in kwargs.EnumerateObject()) arguments[p.Name] = p.Value.Clone();
        }

        return new ChatCompletionRequest(options, Normalize(messages), tools.Functions.Count > 0 ? r.Field("tools") : null, tools, format, arguments);
    }

    /// <summary>
    /// Checks each message and flattens content given as a list of text parts into one string, the form chat
    /// templates expect; other fields (name, tool_calls, tool_call_id) pass through.
    /// </summary>
    private static JsonElement Normalize(JsonElement messages)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            var i = 0;
            foreach (var message in messages.EnumerateArray())
            {
                var param = $"messages[{i++}]";
                if (message.ValueKind != JsonValueKind.Object) throw OpenAiException.BadRequest($"'{param}' must be an object", param, "invalid_type");
                var role = new RequestReader(message).String("role");
                if (role is null || !Roles.Contains(role))
                    throw OpenAiException.BadRequest($"'{param}.role' must be one of {string.Join(", ", Roles)}", param + ".role", "invalid_value");

                w.WriteStartObject();
                foreach (var property in message.EnumerateObject())
                {
                    if (property.Name == "tool_calls" && property.Value.ValueKind != JsonValueKind.Null)
                    {
                        w.WritePropertyName("tool_calls");
                        ToolCallHistory(w, property.Value, param + ".tool_calls");
                        continue;
                    }

                    if (property.Name != "content")
                    {
                        property.WriteTo(w);
                        continue;
                    }

                    w.WritePropertyName("content");
                    switch (property.Value.ValueKind)
                    {
                        case JsonValueKind.String or JsonValueKind.Null:
                            property.Value.WriteTo(w);
                            break;
                        case JsonValueKind.Array:
                            w.WriteStringValue(string.Concat(property.Value.EnumerateArray().Select(part => TextPart(part, param))));
                            break;
                        default:
                            throw OpenAiException.BadRequest($"'{param}.content' must be a string or a list of content parts", param + ".content", "invalid_type");
                    }
                }

                if (!message.TryGetProperty("content", out _)) w.WriteNull("content");
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        return JsonDocument.Parse(buffer.ToArray()).RootElement.Clone();
    }

    /// <summary>
    /// An assistant turn's calls, as transformers hands them to templates: each function's arguments an object (OpenAI
    /// sends them as a JSON string), since templates write them with tojson.
    /// </summary>
    private static void ToolCallHistory(Utf8JsonWriter w, JsonElement calls, string param)
    {
        if (calls.ValueKind != JsonValueKind.Array) throw OpenAiException.BadRequest($"'{param}' must be an array", param, "invalid_type");
        w.WriteStartArray();
        var i = 0;
        foreach (var call in calls.EnumerateArray())
        {
            var at = $"{param}[{i++}]";
            if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("function", out var function) || function.ValueKind != JsonValueKind.Object)
                throw OpenAiException.BadRequest($"'{at}' must be an object with a 'function'", at, "invalid_type");
            var f = new RequestReader(function);
            f.RequiredString("name");
            w.WriteStartObject();
            foreach (var property in call.EnumerateObject())
            {
                if (property.Name != "function")
                {
                    property.WriteTo(w);
                    continue;
                }

                w.WriteStartObject("function");
                foreach (var field in function.EnumerateObject())
                {
                    if (field.Name != "arguments")
                    {
                        field.WriteTo(w);
                        continue;
                    }

                    w.WritePropertyName("arguments");
                    Arguments(field.Value, at + ".function.arguments").WriteTo(w);
                }

                w.WriteEndObject();
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static JsonElement Arguments(JsonElement arguments, string param)
    {
        if (arguments.ValueKind == JsonValueKind.Object) return arguments;
        if (arguments.ValueKind == JsonValueKind.String)
        {
            try
            {
                using var parsed = JsonDocument.Parse(arguments.GetString()!);
                if (parsed.RootElement.ValueKind == JsonValueKind.Object) return parsed.RootElement.Clone();
            }
            catch (JsonException)
            {
                // Said below.
            }
        }

        throw OpenAiException.BadRequest($"'{param}' must be a JSON object, or a string holding one", param, "invalid_value");
    }

    private static string TextPart(JsonElement part, string param)
    {
        var reader = new RequestReader(part);
        if (part.ValueKind != JsonValueKind.Object || reader.String("type") != "text")
            throw OpenAiException.BadRequest($"'{param}.content' may only hold text parts; this model reads no images or audio", param + ".content", "unsupported_value");
        return reader.RequiredString("text");
    }
}

/// <summary>A validated POST /v1/completions body: the prompt as text or as token ids.</summary>
internal sealed record TextCompletionRequest(GenerationOptions Options, string? PromptText, int[]? PromptIds, bool Echo)
{
    public static TextCompletionRequest Parse(JsonElement body)
    {
        var r = new RequestReader(body);
        var options = GenerationOptions.Read(r, 16, chat: false);
        var echo = r.Bool("echo") ?? false;
        switch (r.Field("prompt"))
        {
            case { ValueKind: JsonValueKind.String } s:
                return new TextCompletionRequest(options, s.GetString()!, null, echo);
            case { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() == 1 && a[0].ValueKind == JsonValueKind.String:
                return new TextCompletionRequest(options, a[0].GetString()!, null, echo);
            case { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() > 0 && a.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number):
                return new TextCompletionRequest(options, null, Ids(a), echo);
            case { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() == 1 && a[0].ValueKind == JsonValueKind.Array:
                return new TextCompletionRequest(options, null, Ids(a[0]), echo);
            case { ValueKind: JsonValueKind.Array } a when a.GetArrayLength() > 1:
                throw OpenAiException.BadRequest("only one prompt per request is supported", "prompt", "unsupported_value");
            default:
                throw OpenAiException.BadRequest("'prompt' must be a string, a list with one string, or a list of token ids", "prompt", "invalid_value");
        }
    }

    private static int[] Ids(JsonElement array) => array.EnumerateArray()
        .Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var id) && id >= 0 ? id
            : throw OpenAiException.BadRequest("token ids in 'prompt' must be non-negative integers", "prompt", "invalid_value"))
        .ToArray();
}
