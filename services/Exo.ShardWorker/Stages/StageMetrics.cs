using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Exo.ServiceDefaults;

namespace Exo.ShardWorker.Stages;

/// <summary>
/// Each stage's metrics, tagged with the model and its layers: step durations (prefill and decode apart), positions run
/// (their rate is the stage's tokens/s), and, observed when exported, the KV cache in use against its budget and the
/// requests open.
/// </summary>
public sealed class StageMetrics
{
    private readonly ConcurrentDictionary<StageHost, byte> _hosts = new();
    private readonly Histogram<double> _steps;
    private readonly Counter<long> _positions;

    public StageMetrics(ServiceTelemetry telemetry)
    {
        var meter = telemetry.Meter;
        _steps = meter.CreateHistogram("exo.stage.step.duration", "s", "Time from a request's rows entering this stage's layers to their result",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
        _positions = meter.CreateCounter<long>("exo.stage.tokens", "{token}", "Positions run through this stage's layers");
        meter.CreateObservableUpDownCounter("exo.stage.kv_cache.usage", () => Observe(l => l.KvCacheBytes), "By", "KV cache held by open requests");
        meter.CreateObservableUpDownCounter("exo.stage.kv_cache.limit", () => Observe(l => l.KvBudgetBytes), "By", "KV cache this stage may hold");
        meter.CreateObservableUpDownCounter("exo.stage.requests.active", () => Observe(l => l.ActiveRequests), "{request}", "Requests open on this stage");
    }

    public void Track(StageHost host) => _hosts.TryAdd(host, 0);

    /// <summary>A step of <paramref name="rows"/> positions took <paramref name="elapsed"/>.</summary>
    public void Step(string model, string layers, int rows, TimeSpan elapsed)
    {
        var tags = new TagList { { "gen_ai.request.model", model }, { "exo.layers", layers }, { "exo.step", rows > 1 ? "prefill" : "decode" } };
        _steps.Record(elapsed.TotalSeconds, tags);
        _positions.Add(rows, tags);
    }

    private IEnumerable<Measurement<long>> Observe(Func<StageLoad, long> value)
    {
        foreach (var host in _hosts.Keys)
        {
            if (host.Load() is { } load)
                yield return new Measurement<long>(value(load), new("gen_ai.request.model", host.ModelId), new("exo.layers", load.Layers));
        }
    }
}

/// <summary>What a stage holds now: its layers, the KV cache in use and allowed, the requests open.</summary>
public sealed record StageLoad(string Layers, long KvCacheBytes, long KvBudgetBytes, long ActiveRequests);
