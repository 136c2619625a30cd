using System.Text.Json;
using Exo.Api.Completions;
using Exo.Text.ToolCalls;

namespace Exo.Api.OpenAi;

/// <summary>What every completion object and chunk of one response shares.</summary>
internal sealed record CompletionHeader(string Id, long Created, string Model);

/// <summary>A tool call with its place among the calls of its choice (a stream's delta.tool_calls[].index).</summary>
internal sealed record IndexedToolCall(int Index, ToolCall Call);

/// <summary>
/// A piece of one choice of a completion in the terms both OpenAI APIs share: the choice's index, where its text starts
/// in the choice's whole text, the speaker's role (the chat stream's first chunk), text, tool calls, the logprobs of the
/// tokens behind it, the finish reason, and usage (a stream's last chunk). A whole, unstreamed choice is one chunk too.
/// </summary>
internal sealed record CompletionChunk(
    int Index = 0,
    int Offset = 0,
    string? Role = null,
    string? Text = null,
    IReadOnlyList<IndexedToolCall>? ToolCalls = null,
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

    /// <summary>The answer to a request that did not ask to stream: each choice whole, then the usage of them all.</summary>
    public abstract void WriteCompletion(Utf8JsonWriter w, CompletionHeader header, IReadOnlyList<CompletionChunk> choices, Usage usage);

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

        public override void WriteCompletion(Utf8JsonWriter w, CompletionHeader header, IReadOnlyList<CompletionChunk> choices, Usage usage)
        {
            w.WriteStartObject();
            Envelope(w, header, "chat.completion");
            w.WriteStartArray("choices");
            foreach (var choice in choices)
            {
                w.WriteStartObject();
                w.WriteNumber("index", choice.Index);
                w.WriteStartObject("message");
                w.WriteString("role", "assistant");
                // A message that only calls functions has no content, as OpenAI sends it.
                if (choice.ToolCalls is { Count: > 0 } && string.IsNullOrEmpty(choice.Text)) w.WriteNull("content");
                else w.WriteString("content", choice.Text ?? "");
                w.WriteNull("refusal");
                if (choice.ToolCalls is { Count: > 0 } calls) ToolCalls(w, calls, streamed: false);
                w.WriteEndObject();
                OpenAiJson.ChatLogprobs(w, choice.Logprobs);
                OpenAiJson.WriteStringOrNull(w, "finish_reason", choice.FinishReason);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            OpenAiJson.UsageObject(w, usage);
            w.WriteEndObject();
        }

        /// <summary>tool_calls: whole in a message; in a stream each call comes whole in one delta, with its index.</summary>
        private static void ToolCalls(Utf8JsonWriter w, IReadOnlyList<IndexedToolCall> calls, bool streamed)
        {
            w.WriteStartArray("tool_calls");
            foreach (var (index, call) in calls)
            {
                w.WriteStartObject();
                if (streamed) w.WriteNumber("index", index);
                w.WriteString("id", call.Id);
                w.WriteString("type", "function");
                w.WriteStartObject("function");
                w.WriteString("name", call.Name);
                w.WriteString("arguments", call.Arguments);
                w.WriteEndObject();
                w.WriteEndObject();
            }

            w.WriteEndArray();
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
                w.WriteNumber("index", chunk.Index);
                w.WriteStartObject("delta");
                if (chunk.Role is not null) w.WriteString("role", chunk.Role);
                if (chunk.Text is not null) w.WriteString("content", chunk.Text);
                if (chunk.ToolCalls is { Count: > 0 } calls) ToolCalls(w, calls, streamed: true);
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

        public override void WriteCompletion(Utf8JsonWriter w, CompletionHeader header, IReadOnlyList<CompletionChunk> choices, Usage usage)
        {
            w.WriteStartObject();
            Envelope(w, header, "text_completion");
            w.WriteStartArray("choices");
            foreach (var choice in choices) Choice(w, choice);
            w.WriteEndArray();
            OpenAiJson.UsageObject(w, usage);
            w.WriteEndObject();
        }

        public override void WriteChunk(Utf8JsonWriter w, CompletionHeader header, CompletionChunk chunk, bool includeUsage) => Write(w, header, chunk, includeUsage);

        private static void Choice(Utf8JsonWriter w, CompletionChunk chunk)
        {
            w.WriteStartObject();
            w.WriteString("text", chunk.Text ?? "");
            w.WriteNumber("index", chunk.Index);
            OpenAiJson.TextLogprobs(w, chunk.Logprobs, chunk.Offset);
            OpenAiJson.WriteStringOrNull(w, "finish_reason", chunk.FinishReason);
            w.WriteEndObject();
        }

        /// <summary>A chunk has the shape of an object of one choice; a stream's usage chunk has no choices.</summary>
        private static void Write(Utf8JsonWriter w, CompletionHeader header, CompletionChunk chunk, bool includeUsage)
        {
            var usageOnly = includeUsage && chunk.Usage is not null;
            w.WriteStartObject();
            Envelope(w, header, "text_completion");
            w.WriteStartArray("choices");
            if (!usageOnly) Choice(w, chunk);
            w.WriteEndArray();
            ChunkUsage(w, chunk.Usage, includeUsage);
            w.WriteEndObject();
        }
    }
}
