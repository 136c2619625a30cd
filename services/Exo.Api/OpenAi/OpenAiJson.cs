using System.Text.Json;
using Exo.Api.Completions;
using Exo.Api.Models;

namespace Exo.Api.OpenAi;

/// <summary>The usage block: prompt, completion and total tokens.</summary>
internal readonly record struct Usage(int PromptTokens, int CompletionTokens);

/// <summary>Writes response bodies and stream chunks exactly in the shapes OpenAI's API uses.</summary>
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

    /// <summary>The envelope every completion object and chunk shares.</summary>
    private static void Header(Utf8JsonWriter w, string id, string objectType, long created, string model)
    {
        w.WriteString("id", id);
        w.WriteString("object", objectType);
        w.WriteNumber("created", created);
        w.WriteString("model", model);
        w.WriteNull("system_fingerprint");
    }

    public static void ChatCompletion(Utf8JsonWriter w, string id, long created, string model, string text, IReadOnlyList<LogprobEntry>? logprobs,
        string finishReason, Usage usage)
    {
        w.WriteStartObject();
        Header(w, id, "chat.completion", created, model);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        w.WriteStartObject("message");
        w.WriteString("role", "assistant");
        w.WriteString("content", text);
        w.WriteNull("refusal");
        w.WriteEndObject();
        ChatLogprobs(w, logprobs);
        w.WriteString("finish_reason", finishReason);
        w.WriteEndObject();
        w.WriteEndArray();
        UsageObject(w, usage);
        w.WriteEndObject();
    }

    /// <summary>A chat stream chunk: a delta (role on the first, content after), or the finish, or (choices empty) usage.</summary>
    public static void ChatChunk(Utf8JsonWriter w, string id, long created, string model, string? role, string? content,
        IReadOnlyList<LogprobEntry>? logprobs, string? finishReason, Usage? usage, bool includeUsage)
    {
        w.WriteStartObject();
        Header(w, id, "chat.completion.chunk", created, model);
        w.WriteStartArray("choices");
        if (usage is null)
        {
            w.WriteStartObject();
            w.WriteNumber("index", 0);
            w.WriteStartObject("delta");
            if (role is not null) w.WriteString("role", role);
            if (content is not null) w.WriteString("content", content);
            w.WriteEndObject();
            ChatLogprobs(w, logprobs);
            WriteStringOrNull(w, "finish_reason", finishReason);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        ChunkUsage(w, usage, includeUsage);
        w.WriteEndObject();
    }

    public static void TextCompletion(Utf8JsonWriter w, string id, long created, string model, string text, IReadOnlyList<LogprobEntry>? logprobs,
        int textOffset, string? finishReason, Usage? usage, bool chunk, bool includeUsage = false)
    {
        w.WriteStartObject();
        Header(w, id, "text_completion", created, model);
        w.WriteStartArray("choices");
        if (!chunk || usage is null)
        {
            w.WriteStartObject();
            w.WriteString("text", text);
            w.WriteNumber("index", 0);
            TextLogprobs(w, logprobs, textOffset);
            WriteStringOrNull(w, "finish_reason", finishReason);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        ChunkUsage(w, usage, includeUsage);
        w.WriteEndObject();
    }

    private static void ChatLogprobs(Utf8JsonWriter w, IReadOnlyList<LogprobEntry>? logprobs)
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
    private static void TextLogprobs(Utf8JsonWriter w, IReadOnlyList<LogprobEntry>? logprobs, int textOffset)
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

    /// <summary>On a stream asked for usage, every chunk carries "usage": null except the last, which carries the counts.</summary>
    private static void ChunkUsage(Utf8JsonWriter w, Usage? usage, bool includeUsage)
    {
        if (usage is { } u) UsageObject(w, u);
        else if (includeUsage) w.WriteNull("usage");
    }

    private static void UsageObject(Utf8JsonWriter w, Usage usage)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", usage.PromptTokens);
        w.WriteNumber("completion_tokens", usage.CompletionTokens);
        w.WriteNumber("total_tokens", usage.PromptTokens + usage.CompletionTokens);
        w.WriteEndObject();
    }

    private static void WriteStringOrNull(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteString(name, value);
    }
}
