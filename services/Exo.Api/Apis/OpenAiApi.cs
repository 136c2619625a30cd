using System.Text;
using System.Text.Json;
using Exo.Api.Backends;
using Exo.Api.Completions;
using Exo.Api.Models;
using Exo.Api.OpenAi;
using Exo.Inference.Sampling;
using Exo.Text.Templates;
using Exo.Text.ToolCalls;
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
                prompt = model.Template.Render(request.Messages, request.ToolsJson, addGenerationPrompt: true, request.TemplateArguments);
            }
            catch (TemplateException e)
            {
                throw OpenAiException.BadRequest($"the model's chat template refused these messages: {e.Message}", "messages", "invalid_messages");
            }

            model.RefuseHopeless(prompt, "messages");
            return (request, model, model.Tokenizer.Encode(prompt, addSpecialTokens: false));
        }, cancellationToken);

        // A forced call is written in the model's own tool-call syntax, which the answer is then read in.
        var output = request.Tools.Forced is { } forced && model.ToolSyntax.Forced(forced) is var call
            ? new OutputConstraint(call.Prefix, call.Schema, call.Suffix)
            : request.Format;
        var runners = Runners(backend, admission, model, ids, request.Options, "messages", output);
        if (output is not null)
            model.CheckOutput(output, runners[0].MaxTokens, request.Tools.Forced is null ? "response_format" : "tools", request.Options.MaxTokensParam ?? "max_tokens");
        await RunAsync(http, telemetry, CompletionFormat.Chat, runners, new CompletionChunk(Role: "assistant", Text: ""),
            request.Tools.Read ? model.ToolSyntax.CreateReader : null, cancellationToken);
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
        await RunAsync(http, telemetry, CompletionFormat.Text, Runners(backend, admission, model, ids, request.Options, "prompt", null), echo, null, cancellationToken);
    }

    /// <summary>One runner per choice (n); a seeded request gives each choice its own seed, so the choices differ.</summary>
    private static List<CompletionRunner> Runners(IGenerationBackend backend, AdmissionControl admission, ServedModel model, int[] ids,
        GenerationOptions options, string promptParam, OutputConstraint? output) =>
        Enumerable.Range(0, options.Choices).Select(i =>
        {
            var seeded = options.Sampling.Seed is { } seed ? options with { Sampling = options.Sampling with { Seed = unchecked(seed + (ulong)i) } } : options;
            return new CompletionRunner(backend, admission, model, ids, seeded, promptParam, output);
        }).ToList();

    /// <summary>
    /// Runs a completion's choices (each admitted as its first token is awaited) and answers them, whole or streamed, in
    /// <paramref name="format"/>. The <paramref name="opening"/> chunk, if any, leads each choice's text: the chat
    /// stream's role, or a text completion's echo. With <paramref name="tools"/>, each choice's text is read for calls.
    /// </summary>
    private static async Task RunAsync(HttpContext http, ApiTelemetry telemetry, CompletionFormat format, IReadOnlyList<CompletionRunner> runners,
        CompletionChunk? opening, Func<ToolCallReader>? tools, CancellationToken cancellationToken)
    {
        var options = runners[0].Options;
        var header = new CompletionHeader(format.IdPrefix + Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow.ToUnixTimeSeconds(), options.Model);
        // Every choice is started up to its first token before the response is, so a cluster that cannot serve the model
        // (503) or is full (429) answers with that status rather than with an error event inside a 200 stream.
        var starting = runners.Select((runner, i) => ChoiceRun.StartAsync(i, runner, telemetry.Start(format.Operation, runner), tools?.Invoke(), cancellationToken)).ToList();
        try
        {
            var choices = await Task.WhenAll(starting);
            if (options.Stream) await StreamAsync(http, format, header, choices, opening, cancellationToken);
            else await AnswerAsync(http, format, header, choices, opening, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            foreach (var started in starting.Where(t => t.IsCompletedSuccessfully)) started.Result.Trace.Failed(e);
            throw;
        }
        finally
        {
            foreach (var started in starting)
            {
                if (started.IsCompletedSuccessfully) await started.Result.DisposeAsync();
            }
        }
    }

    private static async Task AnswerAsync(HttpContext http, CompletionFormat format, CompletionHeader header, IReadOnlyList<ChoiceRun> choices,
        CompletionChunk? opening, CancellationToken cancellationToken)
    {
        var withLogprobs = choices[0].Runner.Options.TopLogprobs is not null;
        var wholes = await Task.WhenAll(choices.Select(async choice =>
        {
            var text = new StringBuilder(opening?.Text);
            var calls = new List<IndexedToolCall>();
            var logprobs = withLogprobs ? new List<LogprobEntry>() : null;
            await foreach (var chunk in choice.ChunksAsync(withLogprobs, cancellationToken))
            {
                text.Append(chunk.Text);
                calls.AddRange(chunk.ToolCalls ?? []);
                logprobs?.AddRange(chunk.Logprobs ?? []);
            }

            return new CompletionChunk(Index: choice.Index, Text: text.ToString(), ToolCalls: calls, Logprobs: logprobs, FinishReason: choice.FinishReason);
        }));
        await WriteJson(http, 200, w => format.WriteCompletion(w, header, wholes, Usage(choices)));
    }

    private static async Task StreamAsync(HttpContext http, CompletionFormat format, CompletionHeader header, IReadOnlyList<ChoiceRun> choices,
        CompletionChunk? opening, CancellationToken cancellationToken)
    {
        var options = choices[0].Runner.Options;
        var stream = new CompletionStream(http.Response, format, header, options.IncludeUsage, choices.Count);
        await stream.StartAsync(cancellationToken);
        try
        {
            if (opening is not null)
            {
                foreach (var choice in choices) await stream.SendAsync(opening with { Index = choice.Index }, cancellationToken);
            }

            await foreach (var chunk in ChoiceRun.MergeAsync(choices, options.TopLogprobs is not null, cancellationToken)) await stream.SendAsync(chunk, cancellationToken);
        }
        catch (Exception e) when (e is BackendUnavailableException or BackendSaturatedException or BackendFailedException && !cancellationToken.IsCancellationRequested)
        {
            foreach (var choice in choices) choice.Trace.Failed(e);
            await stream.FailAsync(new OpenAiException(503, e.Message, null, "generation_failed", "server_error"), cancellationToken);
            return;
        }

        if (options.IncludeUsage) await stream.SendAsync(new CompletionChunk(Usage: Usage(choices)), cancellationToken);
        await stream.DoneAsync(cancellationToken);
    }

    /// <summary>The prompt once, and every choice's tokens.</summary>
    private static Usage Usage(IReadOnlyList<ChoiceRun> choices) => new(choices[0].Runner.PromptTokens, choices.Sum(c => c.Runner.CompletionTokens));
}
