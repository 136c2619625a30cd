using System.Diagnostics;
using System.Text.Json;
using Exo.Api.Backends;
using Exo.Api.Completions;
using Exo.Api.Models;
using Exo.Api.OpenAi;
using Exo.Text.Templates;
using Microsoft.AspNetCore.Http.Features;

namespace Exo.Api.Apis;

/// <summary>OpenAI's API: chat completions, text completions and the model list, streaming or not.</summary>
public static class OpenAiApi
{
    public static IEndpointRouteBuilder MapOpenAiApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/v1").AddEndpointFilter<ApiKeyFilter>().AddEndpointFilter<OpenAiErrorFilter>();
        api.MapGet("/models", (ModelCatalog catalog, HttpContext http) => WriteJson(http, 200, w => OpenAiJson.Models(w, catalog.Models)));
        api.MapGet("/models/{id}", (string id, ModelCatalog catalog, HttpContext http) =>
            WriteJson(http, 200, w => OpenAiJson.Model(w, catalog.Find(id) ?? throw ModelNotFound(id))));
        api.MapPost("/chat/completions", ChatCompletions);
        api.MapPost("/completions", TextCompletions);
        return app;
    }

    private static OpenAiException ModelNotFound(string id) =>
        new(404, $"The model '{id}' does not exist; GET /v1/models lists the models served here", "model", "model_not_found");

    private static async Task ChatCompletions(HttpContext http, ModelCatalog catalog, IGenerationBackend backend, AdmissionControl admission,
        ApiTelemetry telemetry, CancellationToken cancellationToken)
    {
        var request = ChatCompletionRequest.Parse(await ReadBodyAsync(http, cancellationToken));
        var model = catalog.Find(request.Options.Model) ?? throw ModelNotFound(request.Options.Model);
        if (model.Template is null)
            throw OpenAiException.BadRequest($"model '{model.Id}' has no chat template; use /v1/completions", "model", "no_chat_template");

        string prompt;
        try
        {
            prompt = model.Template.Render(request.Messages, request.Tools, addGenerationPrompt: true, request.TemplateArguments);
        }
        catch (TemplateException e)
        {
            throw OpenAiException.BadRequest($"the model's chat template refused these messages: {e.Message}", "messages", "invalid_messages");
        }

        var ids = model.Tokenizer.Encode(prompt, addSpecialTokens: false);
        await RunAsync(http, backend, admission, telemetry, new CompletionRunner(backend, model, ids, request.Options), chat: true, echo: null, cancellationToken);
    }

    private static async Task TextCompletions(HttpContext http, ModelCatalog catalog, IGenerationBackend backend, AdmissionControl admission,
        ApiTelemetry telemetry, CancellationToken cancellationToken)
    {
        var request = TextCompletionRequest.Parse(await ReadBodyAsync(http, cancellationToken));
        var model = catalog.Find(request.Options.Model) ?? throw ModelNotFound(request.Options.Model);
        var ids = request.PromptIds ?? model.Tokenizer.Encode(request.PromptText!);
        if (ids.Any(id => id >= model.Config.VocabSize))
            throw OpenAiException.BadRequest($"token ids in 'prompt' must be below the vocabulary size {model.Config.VocabSize}", "prompt", "invalid_value");
        var echo = request.Echo ? request.PromptText ?? model.Tokenizer.Decode(ids) : null;
        await RunAsync(http, backend, admission, telemetry, new CompletionRunner(backend, model, ids, request.Options), chat: false, echo, cancellationToken);
    }

    private static async Task RunAsync(HttpContext http, IGenerationBackend backend, AdmissionControl admission, ApiTelemetry telemetry,
        CompletionRunner runner, bool chat, string? echo, CancellationToken cancellationToken)
    {
        var options = runner.Options;
        using var slot = await admission.EnterAsync(cancellationToken);
        using var activity = telemetry.Source.StartActivity(chat ? "chat.completion" : "text.completion");
        activity?.SetTag("gen_ai.request.model", options.Model);
        activity?.SetTag("gen_ai.usage.input_tokens", runner.PromptTokens);
        var started = Stopwatch.GetTimestamp();
        var id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var model = options.Model;
        var logprobs = options.TopLogprobs is null ? null : new List<LogprobEntry>();

        if (!options.Stream)
        {
            var text = new System.Text.StringBuilder(echo);
            await foreach (var delta in runner.RunAsync(cancellationToken))
            {
                text.Append(delta.Text);
                logprobs?.AddRange(delta.Logprobs);
            }

            telemetry.Completed(runner, Stopwatch.GetElapsedTime(started));
            var usage = new Usage(runner.PromptTokens, runner.CompletionTokens);
            await WriteJson(http, 200, w =>
            {
                if (chat) OpenAiJson.ChatCompletion(w, id, created, model, text.ToString(), logprobs, runner.FinishReason, usage);
                else OpenAiJson.TextCompletion(w, id, created, model, text.ToString(), logprobs, 0, runner.FinishReason, usage, chunk: false);
            });
            return;
        }

        // The first delta is awaited before the response starts, so a cluster that cannot serve the model (503) or is
        // full (429) answers with that status rather than with an error event inside a 200 stream.
        await using var deltas = runner.RunAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
        var more = await deltas.MoveNextAsync();
        telemetry.FirstToken(Stopwatch.GetElapsedTime(started));

        http.Response.StatusCode = 200;
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await http.Response.Body.FlushAsync(cancellationToken);

        var events = new SseWriter(http.Response.Body);
        var offset = echo?.Length ?? 0;
        if (chat) await events.WriteAsync(w => OpenAiJson.ChatChunk(w, id, created, model, "assistant", "", null, null, null, options.IncludeUsage), cancellationToken);
        else if (echo is not null) await events.WriteAsync(w => OpenAiJson.TextCompletion(w, id, created, model, echo, null, 0, null, null, chunk: true, options.IncludeUsage), cancellationToken);

        try
        {
            for (; more; more = await deltas.MoveNextAsync())
            {
                var delta = deltas.Current;
                var entries = logprobs is null ? null : delta.Logprobs;
                if (chat) await events.WriteAsync(w => OpenAiJson.ChatChunk(w, id, created, model, null, delta.Text, entries, null, null, options.IncludeUsage), cancellationToken);
                else await events.WriteAsync(w => OpenAiJson.TextCompletion(w, id, created, model, delta.Text, entries, offset, null, null, chunk: true, options.IncludeUsage), cancellationToken);
                offset += delta.Text.Length;
            }
        }
        catch (Exception e) when (e is BackendUnavailableException or BackendSaturatedException or BackendFailedException && !cancellationToken.IsCancellationRequested)
        {
            // The stream has begun: the error travels as an event, as OpenAI sends it.
            await events.WriteAsync(w => OpenAiJson.Error(w, new OpenAiException(503, e.Message, null, "generation_failed", "server_error")), cancellationToken);
            await events.DoneAsync(cancellationToken);
            return;
        }

        telemetry.Completed(runner, Stopwatch.GetElapsedTime(started));
        if (chat) await events.WriteAsync(w => OpenAiJson.ChatChunk(w, id, created, model, null, null, null, runner.FinishReason, null, options.IncludeUsage), cancellationToken);
        else await events.WriteAsync(w => OpenAiJson.TextCompletion(w, id, created, model, "", null, offset, runner.FinishReason, null, chunk: true, options.IncludeUsage), cancellationToken);
        if (options.IncludeUsage)
        {
            var usage = new Usage(runner.PromptTokens, runner.CompletionTokens);
            if (chat) await events.WriteAsync(w => OpenAiJson.ChatChunk(w, id, created, model, null, null, null, null, usage, true), cancellationToken);
            else await events.WriteAsync(w => OpenAiJson.TextCompletion(w, id, created, model, "", null, offset, null, usage, chunk: true, true), cancellationToken);
        }

        await events.DoneAsync(cancellationToken);
    }

    /// <summary>Reads a JSON body up to the configured size; anything else is OpenAI's 400 or 413.</summary>
    private static async Task<JsonElement> ReadBodyAsync(HttpContext http, CancellationToken cancellationToken)
    {
        const long limit = 8 * 1024 * 1024;
        if (http.Request.ContentLength > limit) throw new OpenAiException(413, $"the request body is larger than {limit / (1024 * 1024)} MiB", null, "request_too_large");
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > limit) throw new OpenAiException(413, $"the request body is larger than {limit / (1024 * 1024)} MiB", null, "request_too_large");
            buffer.Write(chunk, 0, read);
        }

        try
        {
            using var document = JsonDocument.Parse(buffer.ToArray());
            return document.RootElement.ValueKind == JsonValueKind.Object
                ? document.RootElement.Clone()
                : throw OpenAiException.BadRequest("the request body must be a JSON object");
        }
        catch (JsonException e)
        {
            throw OpenAiException.BadRequest($"We could not parse the JSON body of your request: {e.Message}", null, "invalid_json");
        }
    }

    internal static async Task WriteJson(HttpContext http, int status, Action<Utf8JsonWriter> write)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(http.Response.Body, OpenAiJson.WriterOptions);
        write(writer);
        await writer.FlushAsync(http.RequestAborted);
    }
}
