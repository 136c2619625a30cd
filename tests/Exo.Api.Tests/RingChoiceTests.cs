using Exo.Api.Backends;

namespace Exo.Api.Tests;

/// <summary>Which ring of a model's placement a request runs on, by readiness, load and the KV room each ring reported.</summary>
public sealed class RingChoiceTests
{
    private sealed record Ring(bool Ready, int OpenRequests, long? Free) : IRingLoad
    {
        public KvRoom? Room => Free is { } free ? new KvRoom(free, 1000, 0) : null;
    }

    [Fact]
    public void TheLeastLoadedRingWithRoomIsChosenOverAnIdlerRingWithout()
    {
        Ring idleFull = new(true, 0, 50), busyRoomy = new(true, 3, 900), busierRoomy = new(true, 5, 900);
        Assert.Same(busyRoomy, ModelPlacement.Choose([idleFull, busierRoomy, busyRoomy], 200, null));
    }

    [Fact]
    public void WithoutRoomAnywhereTheLeastLoadedReadyRingIsChosen()
    {
        Ring notReady = new(false, 0, 900), busy = new(true, 2, 100), idle = new(true, 1, null);
        Assert.Same(idle, ModelPlacement.Choose([notReady, busy, idle], 500, null));
    }

    [Fact]
    public void TheAvoidedRingAndRingsNotReadyAreNeverChosen()
    {
        Ring avoided = new(true, 0, 900), notReady = new(false, 0, 900);
        Assert.Null(ModelPlacement.Choose([avoided, notReady], 10, avoided));
        var other = new Ring(true, 4, 10);
        Assert.Same(other, ModelPlacement.Choose([avoided, notReady, other], 10, avoided));
    }

    [Fact]
    public void TiesGoToTheEarliestRing()
    {
        Ring first = new(true, 1, 500), second = new(true, 1, 500);
        Assert.Same(first, ModelPlacement.Choose([first, second], 100, null));
    }
}
