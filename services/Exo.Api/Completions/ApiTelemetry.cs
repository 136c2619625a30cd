using System.Diagnostics;
using System.Diagnostics.Metrics;
using Exo.ServiceDefaults;

namespace Exo.Api.Completions;

/// <summary>
/// The API's traces and metrics, every measurement tagged with the model: time to first token, decode tokens/s, request
/// duration, tokens in and out, and the admission queue (requests waiting, generations running). Each completion gets a
/// <see cref="CompletionTrace"/>.
/// </summary>
public sealed class ApiTelemetry
{
    public const string ModelTag = "gen_ai.request.model";

    public ApiTelemetry(ServiceTelemetry service)
    {
        Source = service.ActivitySource;
        var meter = service.Meter;
        TimeToFirstToken = meter.CreateHistogram("exo.api.time_to_first_token", "s", "Time from a request's arrival to its first generated token",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        TokensPerSecond = meter.CreateHistogram<double>("exo.api.tokens_per_second", "{token}/s", "Decode speed of each completion after its first token");
        Duration = meter.CreateHistogram<double>("exo.api.request.duration", "s", "Time from a request's arrival to its last token");
        PromptTokens = meter.CreateCounter<long>("exo.api.prompt_tokens", "{token}", "Tokens of the prompts");
        CompletionTokens = meter.CreateCounter<long>("exo.api.completion_tokens", "{token}", "Tokens generated");
        Waiting = meter.CreateUpDownCounter<long>("exo.api.queue.depth", "{request}", "Requests waiting for admission");
        Running = meter.CreateUpDownCounter<long>("exo.api.requests.active", "{request}", "Generations admitted and running");
    }

    public ActivitySource Source { get; }
    internal Histogram<double> TimeToFirstToken { get; }
    internal Histogram<double> TokensPerSecond { get; }
    internal Histogram<double> Duration { get; }
    internal Counter<long> PromptTokens { get; }
    internal Counter<long> CompletionTokens { get; }
    internal UpDownCounter<long> Waiting { get; }
    internal UpDownCounter<long> Running { get; }

    /// <summary>Starts the span and measurements of one completion; dispose it when the response is done.</summary>
    internal CompletionTrace Start(string operation, CompletionRunner runner) => new(this, operation, runner);
}
