using Exo.Inference.Backends;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Exo.ServiceDefaults;
using System.Threading.Channels;
using Exo.Contracts.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Exo.Inference.Verification;
using Exo.Ring;
using Exo.ShardWorker.Models;
using Exo.ShardWorker.Stages;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;

namespace Exo.ShardWorker.Tests;

/// <summary>
/// One node's stage, driven with ring messages in process: a one-stage ring (first and last) must reproduce the
/// fixture's reference greedy tokens, and every message it cannot act on must come back as a typed error.
/// </summary>
public sealed class StageHostTests : IAsyncLifetime
{
    private const string Model = "llama-tiny";
    private const string Node = "node-a";
    private static readonly ActivitySource Tracing = new("Exo.ShardWorker.Tests");
    private static readonly StageMetrics Metrics = new(new ServiceTelemetry("Exo.ShardWorker.Tests"));
    private readonly StageHost _host = new(Model, new LocalModelFiles(RepositoryPaths.Fixture(Model)), Node, BackendOptions.Cpu(), 64L << 20, Contracts.ClusterSecret.None, Tracing, Metrics, TimeProvider.System,
        NullLogger<StageHost>.Instance, _ => { });
    private readonly ReferenceCase _case = ReferenceFile.Load(RepositoryPaths.Fixture(Model)).Cases[0];

    /// <summary>Collects what the stage sends back on a gateway's stream.</summary>
    private sealed class Replies : IServerStreamWriter<ForwardMessage>
    {
        public Channel<ForwardMessage> Messages { get; } = Channel.CreateUnbounded<ForwardMessage>();

        public WriteOptions? WriteOptions { get; set; }

        public Task WriteAsync(ForwardMessage message) => WriteAsync(message, CancellationToken.None);

        public Task WriteAsync(ForwardMessage message, CancellationToken cancellationToken) => Messages.Writer.WriteAsync(message, cancellationToken).AsTask();

        public async Task<ForwardMessage> NextAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            return await Messages.Reader.ReadAsync(timeout.Token);
        }
    }

    /// <summary>A placement whose one ring (of the same version) is this node alone.</summary>
    private static Placement OneStage(ulong version) => new()
    {
        Version = version,
        ModelId = Model,
        Rings = { new Contracts.V1.Ring { Version = version, Stages = { new Stage { NodeId = Node, GrpcEndpoint = "http://127.0.0.1:1", LayerStart = 0, LayerEnd = 4 } } } },
    };

    private ForwardMessage Prompt(string id, ulong version, uint maxTokens = 24, uint? context = null, string traceparent = "") => new()
    {
        RequestId = id,
        PlacementVersion = version,
        Position = 0,
        Tokens = new TokenIds { Ids = { _case.InputIds.Select(t => (uint)t) } },
        Setup = new RequestSetup
        {
            ModelId = Model,
            ContextTokens = context ?? (uint)_case.InputIds.Length + maxTokens,
            MaxTokens = maxTokens,
            Prompt = { _case.InputIds.Select(t => (uint)t) },
            Sampling = new SamplingParams { TopP = 1, RepetitionPenalty = 1 },
            Traceparent = traceparent,
        },
    };

    public async Task InitializeAsync() => await _host.ApplyAsync(OneStage(1), CancellationToken.None);

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static (Outbox Outbox, Replies Replies, Task Writer) Gateway()
    {
        var outbox = new Outbox();
        var replies = new Replies();
        return (outbox, replies, outbox.WriteAllAsync(replies, CancellationToken.None));
    }

    [Fact]
    public async Task AOneStageRingReproducesTheReferenceGreedyTokensAndFreesItsCache()
    {
        Assert.True(_host.Status().Ready);
        var (outbox, replies, _) = Gateway();
        _host.Receive(Prompt("r1", 1), outbox);

        var tokens = new List<int>();
        while (true)
        {
            var reply = await replies.NextAsync();
            Assert.Equal(ForwardMessage.PayloadOneofCase.Sampled, reply.PayloadCase);
            Assert.Equal((uint)tokens.Count, reply.Sampled.Index);
            tokens.Add((int)reply.Sampled.TokenId);
            if (reply.Sampled.Finish != FinishReason.Unspecified) break;
        }

        Assert.Equal(_case.GreedyNewTokens, tokens);
        Assert.False(_host.Holds("r1"));
        Assert.Equal(0UL, _host.Status().KvCacheBytes);
    }

    [Fact]
    public async Task MessagesItCannotActOnComeBackAsTypedErrors()
    {
        var (outbox, replies, _) = Gateway();

        _host.Receive(Prompt("stale", 7), outbox);
        var stale = await replies.NextAsync();
        Assert.Equal(("stale", RequestError.Types.Code.StalePlacement), (stale.RequestId, stale.Error.Code));

        _host.Receive(new ForwardMessage { RequestId = "unknown", PlacementVersion = 1, Tokens = new TokenIds { Ids = { 1 } } }, outbox);
        var unknown = await replies.NextAsync();
        Assert.Equal(RequestError.Types.Code.Failed, unknown.Error.Code);
        Assert.Contains("not open", unknown.Error.Message);

        var outOfVocabulary = Prompt("oov", 1);
        outOfVocabulary.Tokens.Ids[0] = 1_000_000;
        _host.Receive(outOfVocabulary, outbox);
        Assert.Contains("vocabulary", (await replies.NextAsync()).Error.Message);

        var hidden = Prompt("hidden", 1);
        hidden.HiddenStates = new Contracts.V1.Tensor { Dtype = Contracts.V1.DType.F32, Shape = { 1, 3 }, Data = ByteString.CopyFrom(new byte[12]) };
        _host.Receive(hidden, outbox);
        Assert.Contains("does not take HiddenStates", (await replies.NextAsync()).Error.Message);

        // A request's first rows, which carry its setup, must start it: the codec refuses them anywhere else.
        var skipped = Prompt("skip", 1);
        skipped.Position = 5;
        _host.Receive(skipped, outbox);
        Assert.Contains("rides with the request's rows at position 0, not at position 5", (await replies.NextAsync()).Error.Message);

        Assert.Equal(0u, _host.Status().ActiveRequests);
    }

    [Fact]
    public async Task CancelFreesTheRequestAndANewPlacementFailsWhatRanOnTheOldOne()
    {
        var (outbox, replies, _) = Gateway();
        _host.Receive(Prompt("long", 1, maxTokens: 400), outbox);
        Assert.Equal(ForwardMessage.PayloadOneofCase.Sampled, (await replies.NextAsync()).PayloadCase);
        Assert.True(_host.Cancel("long"));
        Assert.False(_host.Cancel("long"));
        Assert.Equal(0UL, _host.Status().KvCacheBytes);

        _host.Receive(Prompt("replanned", 1, maxTokens: 400), outbox);
        Assert.Equal(ForwardMessage.PayloadOneofCase.Sampled, (await replies.NextAsync()).PayloadCase);
        await _host.ApplyAsync(OneStage(2), CancellationToken.None);
        ForwardMessage error;
        do error = await replies.NextAsync();
        while (error.PayloadCase == ForwardMessage.PayloadOneofCase.Sampled);
        Assert.Equal(RequestError.Types.Code.StalePlacement, error.Error.Code);
        Assert.Equal(2UL, _host.Status().PlacementVersion);
    }

    [Fact]
    public async Task APlacementThatKeepsThisNodesRingChangesNothingHere()
    {
        var (outbox, replies, _) = Gateway();
        _host.Receive(Prompt("kept", 1, maxTokens: 400), outbox);
        Assert.Equal(ForwardMessage.PayloadOneofCase.Sampled, (await replies.NextAsync()).PayloadCase);

        // Another ring (v2, on another node) is added: this node's ring v1 goes on, and so does its request.
        var grown = OneStage(3);
        grown.Rings[0].Version = 1;
        grown.Rings.Add(new Contracts.V1.Ring { Version = 2, Stages = { new Stage { NodeId = "node-b", GrpcEndpoint = "http://127.0.0.1:2", LayerStart = 0, LayerEnd = 4 } } });
        await _host.ApplyAsync(grown, CancellationToken.None);
        for (var i = 0; i < 20; i++) Assert.Equal(ForwardMessage.PayloadOneofCase.Sampled, (await replies.NextAsync()).PayloadCase);
        Assert.True(_host.Holds("kept"));
        Assert.Equal((1UL, true), (_host.Status().PlacementVersion, _host.Status().Ready));
    }

    [Fact]
    public async Task ARequestCancelledBeforeItArrivesIsNeverOpened()
    {
        var (outbox, replies, _) = Gateway();
        Assert.False(_host.Cancel("early"));
        _host.Receive(Prompt("early", 1), outbox);
        _host.Receive(Prompt("later", 1, maxTokens: 1), outbox);
        var reply = await replies.NextAsync();
        Assert.Equal("later", reply.RequestId);
        Assert.False(_host.Holds("early"));
        Assert.Equal(0u, _host.Status().ActiveRequests);
    }

    [Fact]
    public async Task ARequestBeyondTheKvBudgetIsRefusedAsCapacity()
    {
        await using var small = new StageHost(Model, new LocalModelFiles(RepositoryPaths.Fixture(Model)), Node, BackendOptions.Cpu(), 64 << 10, Contracts.ClusterSecret.None, Tracing, Metrics, TimeProvider.System,
            NullLogger<StageHost>.Instance, _ => { });
        await small.ApplyAsync(OneStage(1), CancellationToken.None);
        var (outbox, replies, _) = Gateway();
        small.Receive(Prompt("huge", 1, maxTokens: 400, context: 512), outbox);
        var refused = await replies.NextAsync();
        Assert.Equal(RequestError.Types.Code.Capacity, refused.Error.Code);
        Assert.Contains("KV cache", refused.Error.Message);
        Assert.Equal(0u, small.Status().ActiveRequests);
    }

    [Fact]
    public async Task APlacementWhoseRingDoesNotCoverTheModelIsNotServed()
    {
        var partial = OneStage(3);
        partial.Rings[0].Stages[0].LayerEnd = 2;
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => _host.ApplyAsync(partial, CancellationToken.None));
        Assert.Contains("4 layers", error.Message);
        Assert.False(_host.Status().Ready);
    }

    [Fact]
    public async Task StepsAreSpansInTheGatewaysTraceWithDecodeGatheredAndMeasured()
    {
        var spans = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source == Tracing,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity => { lock (spans) spans.Add(activity); },
        };
        ActivitySource.AddActivityListener(listener);
        var steps = new List<(double Seconds, string Step)>();
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "Exo.ShardWorker.Tests") l.EnableMeasurementEvents(instrument);
            },
        };
        meters.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            if (instrument.Name == "exo.stage.step.duration") lock (steps) steps.Add((value, (string)tags.ToArray().Single(t => t.Key == "exo.step").Value!));
        });
        meters.Start();
        // The gateway's span is sampled: an unsampled one would get no stage spans.
        using var gatewaySpan = new Activity("chat.completion") { ActivityTraceFlags = ActivityTraceFlags.Recorded }.SetIdFormat(ActivityIdFormat.W3C).Start();
        var (outbox, replies, _) = Gateway();
        const int tokens = StageTrace.StepsPerSpan + 5;
        _host.Receive(Prompt("traced", 1, maxTokens: tokens, traceparent: gatewaySpan.Id!), outbox);
        while ((await replies.NextAsync()).Sampled.Finish == FinishReason.Unspecified)
        {
        }

        lock (spans)
        {
            // The prefill, then the decode steps in spans of StepsPerSpan tokens, each token an event.
            Assert.Equal(["stage prefill", "stage decode", "stage decode"], spans.Select(s => s.DisplayName));
            Assert.All(spans, s => Assert.Equal(gatewaySpan.TraceId, s.TraceId));
            Assert.All(spans, s => Assert.Equal(gatewaySpan.SpanId, s.ParentSpanId));
            Assert.Equal(_case.InputIds.Length, spans[0].GetTagItem("exo.rows"));
            Assert.Equal([StageTrace.StepsPerSpan, tokens - 1 - StageTrace.StepsPerSpan], spans.Skip(1).Select(s => s.Events.Count()));
            Assert.Equal(_case.InputIds.Length, spans[1].GetTagItem("exo.first_position"));
            Assert.Equal(_case.InputIds.Length + StageTrace.StepsPerSpan, spans[2].GetTagItem("exo.first_position"));
            Assert.Equal(Enumerable.Range(_case.InputIds.Length, tokens - 1), spans.Skip(1).SelectMany(s => s.Events).Select(e => (int)e.Tags.Single(t => t.Key == "exo.position").Value!));
        }

        lock (steps)
        {
            Assert.Equal(["prefill", .. Enumerable.Repeat("decode", tokens - 1)], steps.Select(s => s.Step));
            Assert.All(steps, s => Assert.True(s.Seconds > 0));
        }
    }
}
