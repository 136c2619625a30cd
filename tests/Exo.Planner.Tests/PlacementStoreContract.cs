using Exo.Contracts.V1;
using Exo.Planner.Store;

namespace Exo.Planner.Tests;

/// <summary>The behaviour every <see cref="IPlacementStore"/> must have; each store runs these against a fresh, isolated instance.</summary>
public abstract class PlacementStoreContract
{
    protected abstract Task<IPlacementStore> CreateStoreAsync();

    /// <summary>A placement of one ring, whose version is the placement's.</summary>
    protected static Placement Ring(string model, ulong version, params (string Node, uint Start, uint End)[] stages)
    {
        var placement = new Placement { ModelId = model, Version = version };
        placement.Rings.Add(RingOf(version, stages));
        return placement;
    }

    protected static Ring RingOf(ulong version, params (string Node, uint Start, uint End)[] stages)
    {
        var ring = new Ring { Version = version };
        ring.Stages.AddRange(stages.Select(s => new Stage { NodeId = s.Node, GrpcEndpoint = $"http://10.0.0.{s.Node.Length}:50051", LayerStart = s.Start, LayerEnd = s.End }));
        return ring;
    }

    protected static Placement Withdrawn(string model, ulong version, string problem) => new() { ModelId = model, Version = version, Problem = problem };

    [Fact]
    public async Task VersionsOnlyGrowAndAreNeverHandedOutTwice()
    {
        var store = await CreateStoreAsync();
        var first = await store.NextVersionAsync(0, CancellationToken.None);
        var second = await store.NextVersionAsync(0, CancellationToken.None);
        Assert.True(first >= 1);
        Assert.True(second > first);

        var concurrent = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(() => store.NextVersionAsync(0, CancellationToken.None))));
        Assert.Equal(50, concurrent.Distinct().Count());
        Assert.All(concurrent, v => Assert.True(v > second));
    }

    [Fact]
    public async Task AFloorRaisesTheCounterAndVersionsGoOnAboveIt()
    {
        var store = await CreateStoreAsync();
        var first = await store.NextVersionAsync(0, CancellationToken.None);
        Assert.Equal(first + 1000, await store.NextVersionAsync(first + 1000, CancellationToken.None));
        // A lower floor (another planner's, or none) does not take the counter back.
        Assert.Equal(first + 1001, await store.NextVersionAsync(0, CancellationToken.None));
        Assert.Equal(first + 1002, await store.NextVersionAsync(first + 5, CancellationToken.None));
    }

    [Fact]
    public async Task SavedPlacementsAreLoadedBackOnePerModel()
    {
        var store = await CreateStoreAsync();
        Assert.Empty(await store.LoadAsync(CancellationToken.None));
        var ring = Ring("qwen2.5-0.5b", 4, ("studio", 0, 10), ("mini", 10, 24));
        var withdrawn = Withdrawn("llama-3.2-1b", 3, "no worker has model 'llama-3.2-1b' in its models directory");

        Assert.True(await store.SaveAsync(ring, CancellationToken.None));
        Assert.True(await store.SaveAsync(withdrawn, CancellationToken.None));

        Assert.Equal([withdrawn, ring], await store.LoadAsync(CancellationToken.None));
    }

    [Fact]
    public async Task ANewerPlacementReplacesTheStoredOneAndAnOlderOneDoesNot()
    {
        var store = await CreateStoreAsync();
        var v5 = Ring("m", 5, ("a", 0, 8));
        Assert.True(await store.SaveAsync(v5, CancellationToken.None));

        Assert.False(await store.SaveAsync(Ring("m", 3, ("b", 0, 8)), CancellationToken.None));
        Assert.False(await store.SaveAsync(Withdrawn("m", 5, "same version, other content"), CancellationToken.None));
        Assert.Equal(v5, Assert.Single(await store.LoadAsync(CancellationToken.None)));

        var v7 = Withdrawn("m", 7, "no shard worker is in the cluster");
        Assert.True(await store.SaveAsync(v7, CancellationToken.None));
        Assert.Equal(v7, Assert.Single(await store.LoadAsync(CancellationToken.None)));
    }

    [Fact]
    public async Task TheStoreKeepsItsOwnCopy()
    {
        var store = await CreateStoreAsync();
        var ring = Ring("m", 2, ("a", 0, 4), ("b", 4, 8));
        await store.SaveAsync(ring, CancellationToken.None);
        ring.Rings[0].Stages[1].LayerEnd = 99;
        (await store.LoadAsync(CancellationToken.None))[0].Rings.Clear();

        Assert.Equal(8u, Assert.Single(await store.LoadAsync(CancellationToken.None)).Rings[0].Stages[1].LayerEnd);
    }

    [Fact]
    public async Task SeveralRingsAreKeptWithTheirOwnVersions()
    {
        var store = await CreateStoreAsync();
        var placement = Ring("m", 9, ("a", 0, 4), ("b", 4, 8));
        placement.Rings[0].Version = 4;
        placement.Rings.Add(RingOf(8, ("c", 0, 8)));
        Assert.True(await store.SaveAsync(placement, CancellationToken.None));

        Assert.Equal(placement, Assert.Single(await store.LoadAsync(CancellationToken.None)));
    }

    public static TheoryData<string, string> Malformed => new()
    {
        { "version", "a placement needs a version" },
        { "model", "a placement needs a model id" },
        { "nothing", "has neither rings nor a problem" },
        { "both", "has rings and a problem" },
        { "no stages", "has no stages" },
        { "ring version", "has version 0, expected a distinct one" },
        { "newer ring", "has version 4, expected a distinct one" },
        { "same ring version", "has version 3, expected a distinct one" },
        { "other ends", "end at different layers (8 and 6)" },
        { "two rings", "node 'a' has two stages" },
        { "gap", "runs layers [5, 8), expected a non-empty range from 4" },
        { "empty", "runs layers [4, 4), expected a non-empty range from 4" },
        { "twice", "node 'a' has two stages" },
        { "endpoint", "lacks a node id or endpoint" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public async Task AMalformedPlacementIsRefusedWithTheReason(string fault, string reason)
    {
        var placement = Ring("m", 3, ("a", 0, 4), ("b", 4, 8));
        switch (fault)
        {
            case "version": placement.Version = 0; break;
            case "model": placement.ModelId = " "; break;
            case "nothing": placement.Rings.Clear(); break;
            case "both": placement.Problem = "too small"; break;
            case "no stages": placement.Rings[0].Stages.Clear(); break;
            case "ring version": placement.Rings[0].Version = 0; break;
            case "newer ring": placement.Rings[0].Version = 4; break;
            case "same ring version": placement.Rings.Add(RingOf(3, ("c", 0, 8))); break;
            case "other ends": placement.Rings.Add(RingOf(2, ("c", 0, 6))); break;
            case "two rings": placement.Rings.Add(RingOf(2, ("a", 0, 8))); break;
            case "gap": placement.Rings[0].Stages[1].LayerStart = 5; break;
            case "empty": placement.Rings[0].Stages[1].LayerEnd = 4; break;
            case "twice": placement.Rings[0].Stages[1].NodeId = "a"; break;
            case "endpoint": placement.Rings[0].Stages[0].GrpcEndpoint = ""; break;
        }

        var store = await CreateStoreAsync();
        var error = await Assert.ThrowsAsync<ArgumentException>(() => store.SaveAsync(placement, CancellationToken.None));
        Assert.Contains(reason, error.Message);
        Assert.Empty(await store.LoadAsync(CancellationToken.None));
    }
}
