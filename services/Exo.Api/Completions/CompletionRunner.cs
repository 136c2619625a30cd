using System.Runtime.CompilerServices;
using System.Text;
using Exo.Api.Backends;
using Exo.Api.Models;
using Exo.Api.OpenAi;
using Exo.Inference.Generation;
using Exo.Inference.Sampling;

namespace Exo.Api.Completions;

/// <summary>A candidate token with its text, for logprobs.</summary>
internal sealed record LogprobCandidate(string Token, float Logprob, byte[] Bytes);

/// <summary>One generated token's logprob entry.</summary>
internal sealed record LogprobEntry(string Token, float Logprob, byte[] Bytes, IReadOnlyList<LogprobCandidate> Top);

/// <summary>Text ready to send: a delta of the completion, with the logprobs of the tokens behind it.</summary>
internal sealed record CompletionDelta(string Text, IReadOnlyList<LogprobEntry> Logprobs);

/// <summary>
/// Drives one generation for the API: checks the context, streams tokens from the backend, turns them into text
/// without splitting characters, applies stop sequences, and counts usage.
/// </summary>
internal sealed class CompletionRunner
{
    private readonly IGenerationBackend _backend;
    private readonly AdmissionControl _admission;
    private readonly ServedModel _model;
    private readonly int[] _prompt;
    private readonly OutputConstraint? _output;

    /// <summary>
    /// Checks the request's length against the model's context, so a 400 goes out before any response starts;
    /// <paramref name="promptParam"/> is the field the prompt came from (messages or prompt), named in the error. The
    /// <paramref name="output"/>, if any, is what the text must be (a JSON format or a forced tool call).
    /// </summary>
    public CompletionRunner(IGenerationBackend backend, AdmissionControl admission, ServedModel model, int[] prompt, GenerationOptions options, string promptParam,
        OutputConstraint? output = null)
    {
        var context = model.ContextLength;
        if (prompt.Length == 0) throw OpenAiException.BadRequest("the prompt is empty", promptParam);
        if (options.MaxTokens is { } max && max >= context)
        {
            var room = prompt.Length < context
                ? $"with this prompt of {prompt.Length} tokens it can be at most {context - prompt.Length}"
                : $"and this prompt alone has {prompt.Length} tokens";
            throw OpenAiException.BadRequest(
                $"{MaxTokensName(options)} is {max}, but the model's context is {context} tokens and must hold the prompt as well; {room}",
                options.MaxTokensParam ?? "max_tokens", "context_length_exceeded");
        }

        // Without max_tokens a chat completion may fill what the prompt leaves, which must be one token at least.
        if (prompt.Length + (options.MaxTokens ?? 1) > context)
        {
            var room = options.MaxTokens is { } limit
                ? $"{MaxTokensName(options)} {limit} leaves room for at most {context - limit} prompt tokens"
                : $"at least one token must be left for the completion, so the prompt can have at most {context - 1}";
            throw OpenAiException.BadRequest($"the prompt has {prompt.Length} tokens; the model's context is {context} tokens ({room})",
                promptParam, "context_length_exceeded");
        }

        if (options.Sampling.LogitBias?.Keys.FirstOrDefault(t => t >= model.Config.VocabSize, -1) is >= 0 and var outside)
            throw OpenAiException.BadRequest($"'logit_bias' names token {outside}; the model's vocabulary has {model.Config.VocabSize}", "logit_bias", "invalid_value");

        _backend = backend;
        _admission = admission;
        _model = model;
        _prompt = prompt;
        _output = output;
        MaxTokens = options.MaxTokens ?? context - prompt.Length;
        Options = options;
    }

    public GenerationOptions Options { get; }
    public int PromptTokens => _prompt.Length;
    public int MaxTokens { get; }
    public int CompletionTokens { get; private set; }
    public string FinishReason { get; private set; } = "stop";
    public Usage Usage => new(PromptTokens, CompletionTokens);

    /// <summary>
    /// Waits for room on the model's ring, then streams the completion's text; <paramref name="trace"/> hears of every
    /// token as it comes. The room is given back when the enumeration ends.
    /// </summary>
    public async IAsyncEnumerable<CompletionDelta> RunAsync(CompletionTrace trace, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var request = new GenerationRequest(_prompt, Options.Sampling, MaxTokens, _model.Special.StopTokenIds, Options.TopLogprobs, _output);
        var decoder = _model.Tokenizer.CreateDecoder(skipSpecialTokens: true);
        var stops = new StopSequenceBuffer(Options.Stop);

        var (lease, steps, more) = await StartAsync(request, trace, cancellationToken);
        using (lease)
        await using (steps)
        {
            for (; more; more = await steps.MoveNextAsync())
            {
                var step = steps.Current;
                CompletionTokens++;
                trace.Token();
                // Stop means an end token: it ends the text and is not part of it.
                if (step.Finish == Inference.Generation.FinishReason.Stop) break;

                // A token whose text is held back (half a character, a possible stop sequence) still reports its logprob.
                IReadOnlyList<LogprobEntry> logprobs = step.Logprobs is { } lp
                    ? [new LogprobEntry(TokenText(step.Token, out var bytes), lp.Logprob, bytes,
                        lp.Top.Select(t => new LogprobCandidate(TokenText(t.Token, out var b), t.Logprob, b)).ToList())]
                    : [];
                var text = stops.Push(decoder.Add(step.Token));
                if (text.Length > 0 || logprobs.Count > 0) yield return new CompletionDelta(text, logprobs);

                if (stops.Stopped)
                {
                    FinishReason = "stop";
                    yield break;
                }

                if (step.Finish == Inference.Generation.FinishReason.Length)
                {
                    FinishReason = "length";
                    break;
                }
            }
        }

        var rest = stops.Push(decoder.Flush()) + stops.Flush();
        if (rest.Length > 0) yield return new CompletionDelta(rest, []);
    }

    /// <summary>
    /// Admits the request and starts its generation, up to its first token. A stage that turns it away for want of KV
    /// cache (the ring's report was out of date, or another API replica took the room) sends it back to the queue rather
    /// than failing it: nothing has been generated yet.
    /// </summary>
    private async Task<(AdmissionLease Lease, IAsyncEnumerator<GenerationEvent> Steps, bool More)> StartAsync(
        GenerationRequest request, CompletionTrace trace, CancellationToken cancellationToken)
    {
        while (true)
        {
            var lease = await trace.AdmitAsync(_admission, _model.Id, request.Prompt.Length + request.MaxTokens, cancellationToken);
            var steps = _backend.GenerateAsync(_model.Id, request, cancellationToken).GetAsyncEnumerator(cancellationToken);
            try
            {
                return (lease, steps, await steps.MoveNextAsync());
            }
            catch (BackendSaturatedException e)
            {
                await steps.DisposeAsync();
                lease.Refused();
                trace.Refused(e.Message);
            }
            catch
            {
                await steps.DisposeAsync();
                lease.Dispose();
                throw;
            }
        }
    }

    private static string MaxTokensName(GenerationOptions options) => options.MaxTokensParam ?? "the default max_tokens";

    private string TokenText(int token, out byte[] bytes)
    {
        var text = _model.Tokenizer.Decode([token]);
        bytes = Encoding.UTF8.GetBytes(text);
        return text;
    }
}
