using System.Diagnostics;
using System.Text;
using Exo.Api.Backends;
using Exo.Api.Completions;
using Exo.Api.Models;
using Exo.Api.Ollama;
using Exo.Api.OpenAi;
using static Exo.Api.Apis.EndpointIo;

namespace Exo.Api.Apis;

/// <summary>
/// Ollama's API beside OpenAI's, for the apps that speak only it: chat and generate (streamed as newline-delimited
/// JSON unless "stream" is false), the model list, a model's description, the running models and the version.
/// </summary>
public static class OllamaApi
{
    /// <summary>The Ollama version whose API this one follows, for clients that check it.</summary>
    public const string Version = "0.9.0";

    public static IEndpointRouteBuilder MapOllamaApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").AddEndpointFilter<OllamaErrorFilter>();
        api.MapPost("/chat", Chat);
        api.MapPost("/generate", Generate);
        api.MapGet("/tags", (ModelCatalog catalog, HttpContext http) => WriteJson(http, 200, w => OllamaJson.Tags(w, catalog.Models.Select(OllamaModel.Of))));
        api.MapPost("/show", Show);
        api.MapGet("/ps", (ModelCatalog catalog, IGenerationBackend backend, HttpContext http) =>
            WriteJson(http, 200, w => OllamaJson.Running(w, catalog.Models.Select(OllamaModel.Of), backend.Describe())));
        api.MapMethods("/version", [HttpMethods.Get, HttpMethods.Head], (HttpContext http) => WriteJson(http, 200, w => OllamaJson.Version(w, Version)));
        return app;
    }

    private static async Task Chat(HttpContext http, RequestBodyReader body, PromptGate gate, ModelCatalog catalog, IGenerationBackend backend,
        AdmissionControl admission, ApiTelemetry telemetry, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var (request, ids) = await PrepareAsync(http, body, gate, json =>
        {
            var request = OllamaChatRequest.Parse(json, catalog);
            return (request, request.Messages.Count == 0 ? null : OllamaPrompt.Chat(request.Common.Model, request.Messages, "messages"));
        }, cancellationToken);

        var common = request.Common;
        var reply = new OllamaReply(chat: true, common.Name, started);
        if (ids is null) await WriteJson(http, 200, w => reply.Done(w, common.Unload ? "unload" : "load"));
        else await RunAsync(http, telemetry, "chat", reply, Runner(backend, admission, common, ids, "messages"), null, cancellationToken);
    }

    private static async Task Generate(HttpContext http, RequestBodyReader body, PromptGate gate, ModelCatalog catalog, IGenerationBackend backend,
        AdmissionControl admission, ApiTelemetry telemetry, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var (request, ids) = await PrepareAsync(http, body, gate, json =>
        {
            var request = OllamaGenerateRequest.Parse(json, catalog);
            return (request, request.Prompt.Length == 0 ? null : OllamaPrompt.Generate(request));
        }, cancellationToken);

        var common = request.Common;
        var reply = new OllamaReply(chat: false, common.Name, started);
        if (ids is null)
        {
            await WriteJson(http, 200, w => reply.Done(w, common.Unload ? "unload" : "load"));
            return;
        }

        // The context for a next request: this prompt and the answer, which is tokenized again. A raw prompt returns none, as Ollama's.
        Func<string, int[]>? context = request.Raw ? null : text => [.. ids, .. common.Model.Tokenizer.Encode(text, addSpecialTokens: false)];
        await RunAsync(http, telemetry, "text_completion", reply, Runner(backend, admission, common, ids, "prompt"), context, cancellationToken);
    }

    /// <summary>The generation, its format checked before anything runs.</summary>
    private static CompletionRunner Runner(IGenerationBackend backend, AdmissionControl admission, OllamaRequest common, int[] ids, string promptParam)
    {
        var runner = new CompletionRunner(backend, admission, common.Model, ids, common.Options, promptParam, common.Output);
        if (common.Output is { } output) common.Model.CheckOutput(output, runner.MaxTokens, "format", "options.num_predict");
        return runner;
    }

    private static async Task Show(HttpContext http, RequestBodyReader body, ModelCatalog catalog, CancellationToken cancellationToken)
    {
        var r = new RequestReader(await body.ReadAsync(http, cancellationToken));
        // Older clients name the model "name".
        var name = r.String("model") ?? r.String("name") ?? throw OpenAiException.BadRequest("you must provide 'model'", "model", "missing_required_parameter");
        r.Bool("verbose");
        var model = OllamaModel.Of(OllamaModel.Find(catalog, name));
        await WriteJson(http, 200, w => OllamaJson.Show(w, model));
    }

    /// <summary>Runs one generation (admitted as its first token is awaited) and answers it, whole or streamed.</summary>
    private static async Task RunAsync(HttpContext http, ApiTelemetry telemetry, string operation, OllamaReply reply, CompletionRunner runner,
        Func<string, int[]>? context, CancellationToken cancellationToken)
    {
        using var trace = telemetry.Start(operation, runner);
        try
        {
            if (runner.Options.Stream) await StreamAsync(http, reply, runner, context, trace, cancellationToken);
            else await AnswerAsync(http, reply, runner, context, trace, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            trace.Failed(e);
            throw;
        }
    }

    private static async Task AnswerAsync(HttpContext http, OllamaReply reply, CompletionRunner runner, Func<string, int[]>? context,
        CompletionTrace trace, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        await foreach (var delta in runner.RunAsync(trace, cancellationToken)) text.Append(delta.Text);

        trace.Completed();
        var whole = text.ToString();
        await WriteJson(http, 200, w => reply.Done(w, whole, runner, trace.Timings(), context?.Invoke(whole)));
    }

    private static async Task StreamAsync(HttpContext http, OllamaReply reply, CompletionRunner runner, Func<string, int[]>? context,
        CompletionTrace trace, CancellationToken cancellationToken)
    {
        // The first delta is awaited before the response starts, so a cluster that cannot serve the model (503) or is
        // full (429) answers with that status rather than with an error line inside a 200 stream.
        await using var deltas = runner.RunAsync(trace, cancellationToken).GetAsyncEnumerator(cancellationToken);
        var more = await deltas.MoveNextAsync();

        var lines = new NdjsonWriter(http.Response);
        await lines.StartAsync(cancellationToken);
        var text = new StringBuilder();
        try
        {
            for (; more; more = await deltas.MoveNextAsync())
            {
                var piece = deltas.Current.Text;
                if (piece.Length == 0) continue;
                text.Append(piece);
                await lines.WriteAsync(w => reply.Chunk(w, piece), cancellationToken);
            }
        }
        catch (Exception e) when (e is BackendUnavailableException or BackendSaturatedException or BackendFailedException && !cancellationToken.IsCancellationRequested)
        {
            // Once the stream has begun an error travels as a line of its own, as Ollama sends it, and ends the stream.
            trace.Failed(e);
            await lines.WriteAsync(w => OllamaJson.Error(w, e.Message), cancellationToken);
            return;
        }

        trace.Completed();
        await lines.WriteAsync(w => reply.Done(w, "", runner, trace.Timings(), context?.Invoke(text.ToString())), cancellationToken);
    }
}
