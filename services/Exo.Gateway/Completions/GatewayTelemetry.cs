using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Exo.Gateway.Completions;

/// <summary>The gateway's traces and metrics: one span per completion, time to first token, tokens and throughput.</summary>
public sealed class GatewayTelemetry : IDisposable
{
    public const string Name = "Exo.Gateway";

    private readonly Meter _meter = new(Name);
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _promptTokens;
    private readonly Counter<long> _completionTokens;

    public GatewayTelemetry()
    {
        _timeToFirstToken = _meter.CreateHistogram<double>("exo.gateway.time_to_first_token", "s", "Time from request to the first streamed text");
        _duration = _meter.CreateHistogram<double>("exo.gateway.request.duration", "s", "Time from request to the last token");
        _promptTokens = _meter.CreateCounter<long>("exo.gateway.prompt_tokens", "{token}");
        _completionTokens = _meter.CreateCounter<long>("exo.gateway.completion_tokens", "{token}");
    }

    public ActivitySource Source { get; } = new(Name);

    public void FirstToken(TimeSpan elapsed) => _timeToFirstToken.Record(elapsed.TotalSeconds);

    internal void Completed(CompletionRunner runner, TimeSpan elapsed)
    {
        _duration.Record(elapsed.TotalSeconds);
        _promptTokens.Add(runner.PromptTokens);
        _completionTokens.Add(runner.CompletionTokens);
        Activity.Current?.SetTag("gen_ai.usage.output_tokens", runner.CompletionTokens);
        Activity.Current?.SetTag("gen_ai.response.finish_reasons", runner.FinishReason);
    }

    public void Dispose()
    {
        Source.Dispose();
        _meter.Dispose();
    }
}
