using System.Text.Json;
using Exo.Api.Completions;
using Exo.Api.Models;

namespace Exo.Api.OpenAi;

/// <summary>The usage block: prompt, completion and total tokens.</summary>
internal readonly record struct Usage(int PromptTokens, int CompletionTokens);

/// <summary>Writes response bodies exactly in the shapes OpenAI's API uses; <see cref="CompletionFormat"/> the completions.</summary>
internal static class OpenAiJson
{
    /// <summary>Text as clients print it: no escaping of quotes, apostrophes or non-ASCII letters.</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Error(Utf8JsonWriter w, OpenAiException e)
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteString("message", e.Message);
        w.WriteString("type", e.Type);
        WriteStringOrNull(w, "param", e.Param);
        WriteStringOrNull(w, "code", e.Code);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    public static void Model(Utf8JsonWriter w, ServedModel model)
    {
        w.WriteStartObject();
        w.WriteString("id", model.Id);
        w.WriteString("object", "model");
        w.WriteNumber("created", model.Created.ToUnixTimeSeconds());
        w.WriteString("owned_by", "exo");
        w.WriteNumber("context_length", model.ContextLength);
        w.WriteEndObject();
    }

    public static void Models(Utf8JsonWriter w, IEnumerable<ServedModel> models)
    {
        w.WriteStartObject();
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        foreach (var model in models) Model(w, model);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    public static void ChatLogprobs(Utf8JsonWriter w, IReadOnlyList<LogprobEntry>? logprobs)
    {
        if (logprobs is null)
        {
            w.WriteNull("logprobs");
            return;
        }

        w.WriteStartObject("logprobs");
        w.WriteStartArray("content");
        foreach (var entry in logprobs)
        {
            w.WriteStartObject();
            Candidate(w, entry.Token, entry.Logprob, entry.Bytes);
            w.WriteStartArray("top_logprobs");
            foreach (var top in entry.Top)
            {
                w.WriteStartObject();
                Candidate(w, top.Token, top.Logprob, top.Bytes);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteNull("refusal");
        w.WriteEndObject();
    }

    /// <summary>The legacy completions logprobs: parallel arrays of tokens, logprobs, top alternatives and offsets.</summary>
    public static void TextLogprobs(Utf8JsonWriter w, IReadOnlyList<LogprobEntry>? logprobs, int textOffset)
    {
        if (logprobs is null)
        {
            w.WriteNull("logprobs");
            return;
        }

        w.WriteStartObject("logprobs");
        w.WriteStartArray("tokens");
        foreach (var e in logprobs) w.WriteStringValue(e.Token);
        w.WriteEndArray();
        w.WriteStartArray("token_logprobs");
        foreach (var e in logprobs) w.WriteNumberValue(e.Logprob);
        w.WriteEndArray();
        w.WriteStartArray("top_logprobs");
        foreach (var e in logprobs)
        {
            w.WriteStartObject();
            foreach (var top in e.Top.DistinctBy(t => t.Token)) w.WriteNumber(top.Token, top.Logprob);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("text_offset");
        foreach (var e in logprobs)
        {
            w.WriteNumberValue(textOffset);
            textOffset += e.Token.Length;
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void Candidate(Utf8JsonWriter w, string token, float logprob, byte[] bytes)
    {
        w.WriteString("token", token);
        w.WriteNumber("logprob", logprob);
        w.WriteStartArray("bytes");
        foreach (var b in bytes) w.WriteNumberValue(b);
        w.WriteEndArray();
    }

    public static void UsageObject(Utf8JsonWriter w, Usage usage)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", usage.PromptTokens);
        w.WriteNumber("completion_tokens", usage.CompletionTokens);
        w.WriteNumber("total_tokens", usage.PromptTokens + usage.CompletionTokens);
        w.WriteEndObject();
    }

    public static void WriteStringOrNull(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteString(name, value);
    }
}
