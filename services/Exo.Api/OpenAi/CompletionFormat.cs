using System.Text.Json;
using Exo.Api.Completions;

namespace Exo.Api.OpenAi;

/// <summary>What every completion object and chunk of one response shares.</summary>
internal sealed record CompletionHeader(string Id, long Created, string Model);

/// <summary>
/// A piece of a completion in the terms both OpenAI APIs share: where its text starts in the whole completion, the
/// speaker's role (the chat stream's first chunk), text, the logprobs of the tokens behind it, the finish reason, and
/// usage (a stream's last chunk). A whole, unstreamed completion is one chunk too.
/// </summary>
internal sealed record CompletionChunk(
    int Offset = 0,
    string? Role = null,
    string? Text = null,
    IReadOnlyList<LogprobEntry>? Logprobs = null,
    string? FinishReason = null,
    Usage? Usage = null);

/// <summary>How chat completions and text completions each spell the same chunks.</summary>
internal abstract class CompletionFormat
{
    public static CompletionFormat Chat { get; } = new ChatFormat();
    public static CompletionFormat Text { get; } = new TextFormat();

    public abstract string IdPrefix { get; }

    /// <summary>The operation, as OpenTelemetry's gen_ai conventions name it; the span is named after it.</summary>
    public abstract string Operation { get; }

    /// <summary>The answer to a request that did not ask to stream.</summary>
    public abstract void WriteCompletion(Utf8JsonWriter w, CompletionHeader header, CompletionChunk whole);

    /// <summary>One event of a stream; on a stream asked for usage every chunk carries "usage", null until the last.</summary>
    public abstract void WriteChunk(Utf8JsonWriter w, CompletionHeader header, CompletionChunk chunk, bool includeUsage);

    private static void Envelope(Utf8JsonWriter w, CompletionHeader header, string objectType)
    {
        w.WriteString("id", header.Id);
        w.WriteString("object", objectType);
        w.WriteNumber("created", header.Created);
        w.WriteString("model", header.Model);
        w.WriteNull("system_fingerprint");
    }

    private static void ChunkUsage(Utf8JsonWriter w, Usage? usage, bool includeUsage)
    {
        if (usage is { } u) OpenAiJson.UsageObject(w, u);
        else if (includeUsage) w.WriteNull("usage");
    }

    private sealed class ChatFormat : CompletionFormat
    {
        public override string IdPrefix => "chatcmpl-";
        public override string Operation => "chat";

        public override void WriteCompletion(Utf8JsonWriter w, CompletionHeader header, CompletionChunk whole)
        {
            w.WriteStartObject();
            Envelope(w, header, "chat.completion");
            w.WriteStartArray("choices");
            w.WriteStartObject();
            w.WriteNumber("index", 0);
            w.WriteStartObject("message");
            w.WriteString("role", "assistant");
            w.WriteString("content", whole.Text ?? "");
            w.WriteNull("refusal");
            w.WriteEndObject();
            OpenAiJson.ChatLogprobs(w, whole.Logprobs);
            OpenAiJson.WriteStringOrNull(w, "finish_reason", whole.FinishReason);
            w.WriteEndObject();
            w.WriteEndArray();
            if (whole.Usage is { } usage) OpenAiJson.UsageObject(w, usage);
            w.WriteEndObject();
        }

        /// <summary>A delta (role on the first, content after), or the finish, or (choices empty) usage.</summary>
        public override void WriteChunk(Utf8JsonWriter w, CompletionHeader header, CompletionChunk chunk, bool includeUsage)
        {
            w.WriteStartObject();
            Envelope(w, header, "chat.completion.chunk");
            w.WriteStartArray("choices");
            if (chunk.Usage is null)
            {
                w.WriteStartObject();
                w.WriteNumber("index", 0);
                w.WriteStartObject("delta");
                if (chunk.Role is not null) w.WriteString("role", chunk.Role);
                if (chunk.Text is not null) w.WriteString("content", chunk.Text);
                w.WriteEndObject();
                OpenAiJson.ChatLogprobs(w, chunk.Logprobs);
                OpenAiJson.WriteStringOrNull(w, "finish_reason", chunk.FinishReason);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            ChunkUsage(w, chunk.Usage, includeUsage);
            w.WriteEndObject();
        }
    }

    private sealed class TextFormat : CompletionFormat
    {
        public override string IdPrefix => "cmpl-";
        public override string Operation => "text_completion";

        public override void WriteCompletion(Utf8JsonWriter w, CompletionHeader header, CompletionChunk whole) => Write(w, header, whole, false);

        public override void WriteChunk(Utf8JsonWriter w, CompletionHeader header, CompletionChunk chunk, bool includeUsage) => Write(w, header, chunk, includeUsage);

        /// <summary>The legacy API uses one shape for objects and chunks; a stream's usage chunk has no choices.</summary>
        private static void Write(Utf8JsonWriter w, CompletionHeader header, CompletionChunk chunk, bool includeUsage)
        {
            var usageOnly = includeUsage && chunk.Usage is not null;
            w.WriteStartObject();
            Envelope(w, header, "text_completion");
            w.WriteStartArray("choices");
            if (!usageOnly)
            {
                w.WriteStartObject();
                w.WriteString("text", chunk.Text ?? "");
                w.WriteNumber("index", 0);
                OpenAiJson.TextLogprobs(w, chunk.Logprobs, chunk.Offset);
                OpenAiJson.WriteStringOrNull(w, "finish_reason", chunk.FinishReason);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            ChunkUsage(w, chunk.Usage, includeUsage);
            w.WriteEndObject();
        }
    }
}
