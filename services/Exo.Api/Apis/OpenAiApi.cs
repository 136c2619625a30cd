using System.Text;
using System.Text.Json;
using Exo.Api.Backends;
using Exo.Api.Completions;
using Exo.Api.Models;
using Exo.Api.OpenAi;
using Exo.Text.Templates;
using static Exo.Api.Apis.EndpointIo;

namespace Exo.Api.Apis;

/// <summary>OpenAI's API: chat completions, text completions and the model list, streaming or not.</summary>
public static class OpenAiApi
{
    public static IEndpointRouteBuilder MapOpenAiApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/v1").AddEndpointFilter<OpenAiErrorFilter>();
        api.MapGet("/models", (ModelCatalog catalog, HttpContext http) => WriteJson(http, 200, w => OpenAiJson.Models(w, catalog.Models)));
        api.MapGet("/models/{id}", (string id, ModelCatalog catalog, HttpContext http) =>
        {
            var model = catalog.Find(id) ?? throw ModelNotFound(id);
            return WriteJson(http, 200, w => OpenAiJson.Model(w, model));
        });
        api.MapPost("/chat/completions", ChatCompletions);
        api.MapPost("/completions", TextCompletions);
        return app;
    }

    private static OpenAiException ModelNotFound(string id) =>
        new(404, $"The model '{id}' does not exist; GET /v1/models lists the models served here", "model", "model_not_found");

    private static async Task ChatCompletions(HttpContext http, RequestBodyReader body, PromptGate gate, ModelCatalog catalog, IGenerationBackend backend,
        AdmissionControl admission, ApiTelemetry telemetry, CancellationToken cancellationToken)
    {
        var (request, model, ids) = await PrepareAsync(http, body, gate, json =>
        {
            var request = ChatCompletionRequest.Parse(json);
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

            model.RefuseHopeless(prompt, "messages");
            return (request, model, model.Tokenizer.Encode(prompt, addSpecialTokens: false));
        }, cancellationToken);
        await RunAsync(http, telemetry, CompletionFormat.Chat, new CompletionRunner(backend, admission, model, ids, request.Options, "messages"),
            new CompletionChunk(Role: "assistant", Text: ""), cancellationToken);
    }

    private static async Task TextCompletions(HttpContext http, RequestBodyReader body, PromptGate gate, ModelCatalog catalog, IGenerationBackend backend,
        AdmissionControl admission, ApiTelemetry telemetry, CancellationToken cancellationToken)
    {
        var (request, model, ids) = await PrepareAsync(http, body, gate, json =>
        {
            var request = TextCompletionRequest.Parse(json);
            var model = catalog.Find(request.Options.Model) ?? throw ModelNotFound(request.Options.Model);
            if (request.PromptText is { } text) model.RefuseHopeless(text, "prompt");
            return (request, model, request.PromptIds ?? model.Tokenizer.Encode(request.PromptText!));
        }, cancellationToken);
        if (ids.Any(id => id >= model.Config.VocabSize))
            throw OpenAiException.BadRequest($"token ids in 'prompt' must be below the vocabulary size {model.Config.VocabSize}", "prompt", "invalid_value");
        var echo = request.Echo ? new CompletionChunk(Text: request.PromptText ?? model.Tokenizer.Decode(ids)) : null;
        await RunAsync(http, telemetry, CompletionFormat.Text, new CompletionRunner(backend, admission, model, ids, request.Options, "prompt"), echo, cancellationToken);
    }

    /// <summary>
    /// Runs one completion (admitted as its first token is awaited) and answers it, whole or streamed, in
    /// <paramref name="format"/>. The <paramref name="opening"/> chunk, if any, leads the text: the chat stream's role,
    /// or a text completion's echo.
    /// </summary>
    private static async Task RunAsync(HttpContext http, ApiTelemetry telemetry, CompletionFormat format,
        CompletionRunner runner, CompletionChunk? opening, CancellationToken cancellationToken)
    {
        var options = runner.Options;
        using var trace = telemetry.Start(format.Operation, runner);
        try
        {
            var header = new CompletionHeader(format.IdPrefix + Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow.ToUnixTimeSeconds(), options.Model);
            if (options.Stream) await StreamAsync(http, format, header, runner, opening, trace, cancellationToken);
            else await AnswerAsync(http, format, header, runner, opening, trace, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            trace.Failed(e);
            throw;
        }
    }

    private static async Task AnswerAsync(HttpContext http, CompletionFormat format, CompletionHeader header, CompletionRunner runner,
        CompletionChunk? opening, CompletionTrace trace, CancellationToken cancellationToken)
    {
        var text = new StringBuilder(opening?.Text);
        var logprobs = runner.Options.TopLogprobs is null ? null : new List<LogprobEntry>();
        await foreach (var delta in runner.RunAsync(trace, cancellationToken))
        {
            text.Append(delta.Text);
            logprobs?.AddRange(delta.Logprobs);
        }

        trace.Completed();
        var whole = new CompletionChunk(Text: text.ToString(), Logprobs: logprobs, FinishReason: runner.FinishReason, Usage: runner.Usage);
        await WriteJson(http, 200, w => format.WriteCompletion(w, header, whole));
    }

    private static async Task StreamAsync(HttpContext http, CompletionFormat format, CompletionHeader header, CompletionRunner runner,
        CompletionChunk? opening, CompletionTrace trace, CancellationToken cancellationToken)
    {
        // The first delta is awaited before the response starts, so a cluster that cannot serve the model (503) or is
        // full (429) answers with that status rather than with an error event inside a 200 stream.
        await using var deltas = runner.RunAsync(trace, cancellationToken).GetAsyncEnumerator(cancellationToken);
        var more = await deltas.MoveNextAsync();

        var withLogprobs = runner.Options.TopLogprobs is not null;
        var stream = new CompletionStream(http.Response, format, header, runner.Options.IncludeUsage);
        await stream.StartAsync(cancellationToken);
        if (opening is not null) await stream.SendAsync(opening, cancellationToken);
        try
        {
            for (; more; more = await deltas.MoveNextAsync())
                await stream.SendAsync(new CompletionChunk(Text: deltas.Current.Text, Logprobs: withLogprobs ? deltas.Current.Logprobs : null), cancellationToken);
        }
        catch (Exception e) when (e is BackendUnavailableException or BackendSaturatedException or BackendFailedException && !cancellationToken.IsCancellationRequested)
        {
            trace.Failed(e);
            await stream.FailAsync(new OpenAiException(503, e.Message, null, "generation_failed", "server_error"), cancellationToken);
            return;
        }

        trace.Completed();
        await stream.SendAsync(new CompletionChunk(FinishReason: runner.FinishReason), cancellationToken);
        if (runner.Options.IncludeUsage) await stream.SendAsync(new CompletionChunk(Usage: runner.Usage), cancellationToken);
        await stream.DoneAsync(cancellationToken);
    }
}
