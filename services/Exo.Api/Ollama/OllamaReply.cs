using System.Diagnostics;
using System.Text.Json;
using Exo.Api.Completions;

namespace Exo.Api.Ollama;

/// <summary>
/// The objects of one /api/chat or /api/generate answer: the text as a chat message or as a response, each object with
/// the model's name as the request gave it and its time. The last is done, with the reason and, after a generation,
/// the counts and the durations (nanoseconds) Ollama reports; load_duration is the wait for room on the model's ring,
/// the models here being loaded all along; total_duration counts from <paramref name="started"/>, the request's arrival
/// (a <see cref="Stopwatch"/> timestamp).
/// </summary>
internal sealed class OllamaReply(bool chat, string model, long started)
{
    /// <summary>A piece of the text, streamed.</summary>
    public void Chunk(Utf8JsonWriter w, string text)
    {
        Open(w, text);
        w.WriteBoolean("done", false);
        w.WriteEndObject();
    }

    /// <summary>The answer to a request that only loads or unloads the model (<paramref name="reason"/>).</summary>
    public void Done(Utf8JsonWriter w, string reason)
    {
        Open(w, "");
        w.WriteBoolean("done", true);
        w.WriteString("done_reason", reason);
        w.WriteEndObject();
    }

    /// <summary>The last object of a generation: the whole text unless it was streamed, and the context for the next request when it has one.</summary>
    public void Done(Utf8JsonWriter w, string text, CompletionRunner runner, CompletionTimings timings, int[]? context)
    {
        Open(w, text);
        w.WriteBoolean("done", true);
        w.WriteString("done_reason", runner.FinishReason);
        if (context is not null)
        {
            w.WriteStartArray("context");
            foreach (var id in context) w.WriteNumberValue(id);
            w.WriteEndArray();
        }

        w.WriteNumber("total_duration", Nanoseconds(Stopwatch.GetElapsedTime(started)));
        w.WriteNumber("load_duration", Nanoseconds(timings.Queued));
        w.WriteNumber("prompt_eval_count", runner.PromptTokens);
        w.WriteNumber("prompt_eval_duration", Nanoseconds(timings.PromptEval));
        w.WriteNumber("eval_count", runner.CompletionTokens);
        w.WriteNumber("eval_duration", Nanoseconds(timings.Eval));
        w.WriteEndObject();
    }

    private static long Nanoseconds(TimeSpan span) => span.Ticks * (1_000_000_000 / TimeSpan.TicksPerSecond);

    private void Open(Utf8JsonWriter w, string text)
    {
        w.WriteStartObject();
        w.WriteString("model", model);
        w.WriteString("created_at", DateTime.UtcNow);
        if (chat)
        {
            w.WriteStartObject("message");
            w.WriteString("role", "assistant");
            w.WriteString("content", text);
            w.WriteEndObject();
        }
        else
        {
            w.WriteString("response", text);
        }
    }
}
