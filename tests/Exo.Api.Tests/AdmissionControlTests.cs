using System.Diagnostics;
using Exo.Api.Backends;
using Exo.Api.Completions;
using Exo.Api.OpenAi;
using Microsoft.Extensions.Logging.Abstractions;

namespace Exo.Api.Tests;

/// <summary>Admission by the KV cache the ring reports, against a backend whose report the test sets.</summary>
public sealed class AdmissionControlTests
{
    private const string Model = "m";

    private sealed class ReportingBackend : IGenerationBackend
    {
        public KvRoom? Report { get; set; }

        public KvRoom? Room(string model) => Report;

        public IAsyncEnumerable<GenerationEvent> GenerateAsync(string model, GenerationRequest request, CancellationToken cancellationToken) =>
            throw new NotSupportedException();

        public ClusterView Describe() => throw new NotSupportedException();
    }

    private static KvRoom Report(long free, long capacity = 1000) => new(free, capacity, Stopwatch.GetTimestamp());

    private static async Task AssertWaitingAsync(Task<AdmissionLease> entering)
    {
        await Task.Delay(300);
        Assert.False(entering.IsCompleted, "admitted without room");
    }

    [Fact]
    public async Task RequestsRunWhileTheRingHasRoomAndWaitInOrderBeyondIt()
    {
        var backend = new ReportingBackend { Report = Report(free: 100) };
        var admission = new AdmissionControl(backend, maxWaiting: 2, TimeProvider.System, NullLogger<AdmissionControl>.Instance);
        using var first = await admission.EnterAsync(Model, 60, CancellationToken.None);
        // The report still says 100 free: what was admitted since is taken off it.
        var second = admission.EnterAsync(Model, 50, CancellationToken.None);
        var third = admission.EnterAsync(Model, 10, CancellationToken.None);
        await AssertWaitingAsync(second);
        Assert.False(third.IsCompleted, "a small request overtook the one waiting before it");
        Assert.Equal((1, 2), (admission.InFlight, admission.Waiting));
        await Assert.ThrowsAsync<AdmissionRejectedException>(() => admission.EnterAsync(Model, 1, CancellationToken.None));

        // A newer report that counts the first request changes nothing; the first finishing makes room at once.
        backend.Report = Report(free: 40);
        await AssertWaitingAsync(second);
        first.Dispose();
        using var admitted = await second.WaitAsync(TimeSpan.FromSeconds(5));
        using var behind = await third.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal((2, 0), (admission.InFlight, admission.Waiting));
    }

    [Fact]
    public async Task AStageThatTurnsARequestAwayHoldsAdmissionsUntilItReportsAgain()
    {
        var backend = new ReportingBackend { Report = Report(free: 100) };
        var admission = new AdmissionControl(backend, maxWaiting: 8, TimeProvider.System, NullLogger<AdmissionControl>.Instance);
        var turnedAway = await admission.EnterAsync(Model, 10, CancellationToken.None);
        turnedAway.Refused();
        Assert.Equal(0, admission.InFlight);

        // Another API replica took the room: the stale report must not send the request straight back.
        var again = admission.EnterAsync(Model, 10, CancellationToken.None);
        await Task.Delay(50);
        Assert.False(again.IsCompleted, "admitted again on the report the stage contradicted");
        backend.Report = Report(free: 100);
        using var admitted = await again.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task ARequestNoStageCouldEverHoldIsABadRequestAndAnUnknownRoomAdmitsAtOnce()
    {
        var backend = new ReportingBackend { Report = Report(free: 100, capacity: 500) };
        var admission = new AdmissionControl(backend, maxWaiting: 8, TimeProvider.System, NullLogger<AdmissionControl>.Instance);
        var tooLarge = await Assert.ThrowsAsync<OpenAiException>(() => admission.EnterAsync(Model, 501, CancellationToken.None));
        Assert.Equal((400, "max_tokens"), (tooLarge.Status, tooLarge.Param));

        // No ready ring: the backend answers the request itself (503 with its reason), without a wait here.
        backend.Report = null;
        using var lease = await admission.EnterAsync(Model, 10_000, CancellationToken.None);
    }

    [Fact]
    public async Task AWaitingRequestWhoseClientLeftGivesUpItsPlace()
    {
        var backend = new ReportingBackend { Report = Report(free: 10) };
        var admission = new AdmissionControl(backend, maxWaiting: 1, TimeProvider.System, NullLogger<AdmissionControl>.Instance);
        using var leaving = new CancellationTokenSource();
        var waiting = admission.EnterAsync(Model, 20, leaving.Token);
        await AssertWaitingAsync(waiting);
        await leaving.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal(0, admission.Waiting);
        using var next = await admission.EnterAsync(Model, 10, CancellationToken.None);
    }
}
