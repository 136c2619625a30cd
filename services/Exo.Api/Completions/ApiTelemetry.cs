using System.Diagnostics;
using System.Diagnostics.Metrics;
using Exo.ServiceDefaults;

namespace Exo.Api.Completions;

/// <summary>The gateway's traces and metrics: one span per completion, time to first token, tokens and throughput.</summary>
public sealed class ApiTelemetry
{
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _promptTokens;
    private readonly Counter<long> _completionTokens;

    public ApiTelemetry(ServiceTelemetry service)
    {
        Source = service.ActivitySource;
        var meter = service.Meter;
        _timeToFirstToken = meter.CreateHistogram<double>("exo.gateway.time_to_first_token", "s", "Time from request to the first streamed text");
        _duration = meter.CreateHistogram<double>("exo.gateway.request.duration", "s", "Time from request to the last token");
        _promptTokens = meter.CreateCounter<long>("exo.gateway.prompt_tokens", "{token}");
        _completionTokens = meter.CreateCounter<long>("exo.gateway.completion_tokens", "{token}");
    }

    public ActivitySource Source { get; }

    public void FirstToken(TimeSpan elapsed) => _timeToFirstToken.Record(elapsed.TotalSeconds);

    internal void Completed(CompletionRunner runner, TimeSpan elapsed)
    {
        _duration.Record(elapsed.TotalSeconds);
        _promptTokens.Add(runner.PromptTokens);
        _completionTokens.Add(runner.CompletionTokens);
        Activity.Current?.SetTag("gen_ai.usage.output_tokens", runner.CompletionTokens);
        Activity.Current?.SetTag("gen_ai.response.finish_reasons", runner.FinishReason);
    }
}
