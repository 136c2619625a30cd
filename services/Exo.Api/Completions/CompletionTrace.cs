using System.Diagnostics;

namespace Exo.Api.Completions;

/// <summary>
/// Where a completion's time went: waiting for admission, from admission to the first token (the prompt's prefill), and
/// from the first token to the last (decoding).
/// </summary>
internal readonly record struct CompletionTimings(TimeSpan Queued, TimeSpan PromptEval, TimeSpan Eval);

/// <summary>
/// One completion's span and measurements. The span holds the request's parameters, its wait for admission, and the
/// time of every token as span events, <see cref="TokensPerEvent"/> tokens to an event ("tokens 0-15", with each
/// token's milliseconds since the request arrived), so a long answer stays a trace someone can read.
/// </summary>
internal sealed class CompletionTrace : IDisposable
{
    public const int TokensPerEvent = 16;

    private readonly ApiTelemetry _telemetry;
    private readonly CompletionRunner _runner;
    private readonly Activity? _span;
    private readonly TagList _model;
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly List<double> _pending = new(TokensPerEvent);
    private long _admitted;
    private long _firstToken;
    private long _lastToken;
    private int _tokens;
    private bool _running;

    public CompletionTrace(ApiTelemetry telemetry, string operation, CompletionRunner runner)
    {
        _telemetry = telemetry;
        _runner = runner;
        _model = new TagList { { ApiTelemetry.ModelTag, runner.Options.Model } };
        _span = telemetry.Source.StartActivity($"{operation} {runner.Options.Model}");
        if (_span is null) return;
        _span.SetTag("gen_ai.operation.name", operation);
        _span.SetTag(ApiTelemetry.ModelTag, runner.Options.Model);
        _span.SetTag("gen_ai.request.max_tokens", runner.MaxTokens);
        _span.SetTag("gen_ai.request.temperature", runner.Options.Sampling.Temperature);
        _span.SetTag("gen_ai.request.stream", runner.Options.Stream);
        _span.SetTag("gen_ai.usage.input_tokens", runner.PromptTokens);
    }

    private double Milliseconds(long since, long until) => Math.Round(Stopwatch.GetElapsedTime(since, until).TotalMilliseconds, 2);

    /// <summary>Waits for room on the model's ring, counted in the model's queue depth meanwhile.</summary>
    public async Task<AdmissionLease> AdmitAsync(AdmissionControl admission, string model, int contextTokens, CancellationToken cancellationToken)
    {
        _telemetry.Waiting.Add(1, _model);
        AdmissionLease lease;
        try
        {
            lease = await admission.EnterAsync(model, contextTokens, cancellationToken);
        }
        finally
        {
            _telemetry.Waiting.Add(-1, _model);
        }

        // A request a stage turned away is admitted again: it still counts once.
        if (!_running) _telemetry.Running.Add(1, _model);
        _running = true;
        _admitted = Stopwatch.GetTimestamp();
        _span?.AddEvent(new ActivityEvent("admitted", tags: new ActivityTagsCollection { ["exo.queue.wait_ms"] = Milliseconds(_started, _admitted) }));
        return lease;
    }

    /// <summary>A stage had no room for the request after all; it waits for admission again.</summary>
    public void Refused(string reason) => _span?.AddEvent(new ActivityEvent("refused by a stage", tags: new ActivityTagsCollection { ["exo.refusal"] = reason }));

    /// <summary>A token came from the backend.</summary>
    public void Token()
    {
        var now = Stopwatch.GetTimestamp();
        if (_tokens++ == 0)
        {
            _firstToken = now;
            _telemetry.TimeToFirstToken.Record(Stopwatch.GetElapsedTime(_started, now).TotalSeconds, _model);
        }

        _lastToken = now;
        if (_span is null) return;
        _pending.Add(Milliseconds(_started, now));
        if (_pending.Count == TokensPerEvent) FlushTokens();
    }

    private void FlushTokens()
    {
        if (_span is null || _pending.Count == 0) return;
        var first = _tokens - _pending.Count;
        _span.AddEvent(new ActivityEvent($"tokens {first}-{_tokens - 1}", tags: new ActivityTagsCollection
        {
            ["exo.tokens.first"] = first,
            ["exo.tokens.count"] = _pending.Count,
            ["exo.tokens.at_ms"] = _pending.ToArray(),
        }));
        _pending.Clear();
    }

    /// <summary>The completion's timings so far; a phase not reached yet counts as zero.</summary>
    public CompletionTimings Timings()
    {
        TimeSpan Between(long from, long to) => from == 0 || to == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(from, to);
        return new CompletionTimings(Between(_started, _admitted), Between(_admitted, _firstToken), Between(_firstToken, _lastToken));
    }

    public void Completed()
    {
        var now = Stopwatch.GetTimestamp();
        _telemetry.Duration.Record(Stopwatch.GetElapsedTime(_started, now).TotalSeconds, _model);
        _telemetry.PromptTokens.Add(_runner.PromptTokens, _model);
        _telemetry.CompletionTokens.Add(_runner.CompletionTokens, _model);
        double? rate = _tokens > 1 ? (_tokens - 1) / Stopwatch.GetElapsedTime(_firstToken, _lastToken).TotalSeconds : null;
        if (rate is { } r && double.IsFinite(r)) _telemetry.TokensPerSecond.Record(r, _model);
        if (_span is null) return;
        _span.SetTag("gen_ai.usage.output_tokens", _runner.CompletionTokens);
        _span.SetTag("gen_ai.response.finish_reasons", new[] { _runner.FinishReason });
        if (_tokens > 0) _span.SetTag("exo.time_to_first_token_ms", Milliseconds(_started, _firstToken));
        if (rate is { } tps && double.IsFinite(tps)) _span.SetTag("exo.tokens_per_second", Math.Round(tps, 1));
    }

    public void Failed(Exception e)
    {
        _span?.SetStatus(ActivityStatusCode.Error, e.Message);
        _span?.SetTag("error.type", e.GetType().Name);
    }

    public void Dispose()
    {
        FlushTokens();
        if (_running) _telemetry.Running.Add(-1, _model);
        _span?.Dispose();
    }
}
