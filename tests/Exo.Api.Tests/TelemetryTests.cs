using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Exo.Api.Tests;

/// <summary>What the dashboard gets from the API: one span per completion with its token times, and per-model metrics.</summary>
public sealed class TelemetryTests
{
    private sealed record Measurement(string Instrument, double Value, string? Model);

    [Fact]
    public async Task ACompletionIsOneReadableSpanAndPerModelMetrics()
    {
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Exo.Api",
            Sample = (ref _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        var measurements = new ConcurrentQueue<Measurement>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "Exo.Api") l.EnableMeasurementEvents(instrument);
        };
        meters.SetMeasurementEventCallback<double>((i, value, tags, _) => measurements.Enqueue(new(i.Name, value, Model(tags))));
        meters.SetMeasurementEventCallback<long>((i, value, tags, _) => measurements.Enqueue(new(i.Name, value, Model(tags))));
        meters.Start();

        await using var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(b => b.UseSetting("Api:Models:0", ApiProcess.Model("exo-tiny")));
        using var http = factory.CreateClient();
        var response = await http.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "exo-tiny",
            messages = new[] { new { role = "user", content = "Tell me about Elizabeth Bennet." } },
            max_tokens = 40,
            temperature = 0,
            stream = true,
        });
        response.EnsureSuccessStatusCode();
        await response.Content.ReadAsStringAsync();

        var span = Assert.Single(spans, s => s.DisplayName == "chat exo-tiny");
        Assert.Equal("exo-tiny", span.GetTagItem("gen_ai.request.model"));
        Assert.Equal(40, span.GetTagItem("gen_ai.usage.output_tokens"));
        Assert.NotNull(span.GetTagItem("exo.time_to_first_token_ms"));
        var events = span.Events.Select(e => e.Name).ToList();
        Assert.Equal(["admitted", "tokens 0-15", "tokens 16-31", "tokens 32-39"], events);
        var times = span.Events.Skip(1).SelectMany(e => (double[])e.Tags.Single(t => t.Key == "exo.tokens.at_ms").Value!).ToList();
        Assert.Equal(40, times.Count);
        Assert.Equal(times.Order(), times);

        Assert.Contains(measurements, m => m is { Instrument: "exo.api.time_to_first_token", Model: "exo-tiny" } && m.Value > 0);
        Assert.Contains(measurements, m => m is { Instrument: "exo.api.tokens_per_second", Model: "exo-tiny" } && m.Value > 0);
        Assert.Contains(measurements, m => m is { Instrument: "exo.api.completion_tokens", Model: "exo-tiny", Value: 40 });
        // The queue and the running count go up and back down: nothing is left waiting or running.
        Assert.Equal(0, measurements.Where(m => m.Instrument == "exo.api.queue.depth").Sum(m => m.Value));
        Assert.Equal(0, measurements.Where(m => m.Instrument == "exo.api.requests.active").Sum(m => m.Value));
        Assert.Contains(measurements, m => m is { Instrument: "exo.api.requests.active", Value: 1 });
    }

    private static string? Model(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == "gen_ai.request.model") return tag.Value as string;
        }

        return null;
    }
}
