using Exo.Inference;
using Exo.Planner.Planning;

namespace Exo.Planner.Tests;

public sealed class ReplicaPlannerTests
{
    private const long GB = 1_000_000_000;

    // 32 layers of 0.2 GB, 0.5 GB embeddings, 0.5 GB head: 7.4 GB in all.
    private static readonly ModelProfile Model = new("m", 32, Bytes(0.2), Bytes(0.5), Bytes(0.5), false, 0, 0);

    private static long Bytes(double gigabytes) => (long)Math.Round(gigabytes * GB);

    private static NodeCapacity Node(string id, double gigabytes) => new(id, Bytes(gigabytes));

    private static NodeCapacity[] Nodes(double gigabytes, params string[] ids) => [.. ids.Select(id => Node(id, gigabytes))];

    private static (long? Version, (string Node, int Start, int End)[] Stages)[] Rings(ReplicaResult result)
    {
        Assert.True(result.Succeeded, result.Error);
        return [.. result.Rings.Select(r => (r.Version, r.Stages.Select(s => (s.NodeId, s.Layers.Start, s.Layers.End)).ToArray()))];
    }

    private static ReplicaResult Plan(IEnumerable<NodeCapacity> nodes, Replicas? replicas = null, params PlannedRing[] current) =>
        ReplicaPlanner.TryPlan(nodes, Model, replicas ?? Replicas.Auto, current);

    /// <summary>The rings a plan gave, with the versions its publisher would have given the new ones.</summary>
    private static PlannedRing[] Published(ReplicaResult result, params long[] versions)
    {
        var next = 0;
        return [.. result.Rings.Select(r => r.Version is null ? r with { Version = versions[next++] } : r)];
    }

    [Fact]
    public void AModelThatFitsEachNodeGetsARingPerNode()
    {
        Assert.Equal(
        [
            (null, [("a", 0, 32)]),
            (null, [("b", 0, 32)]),
            (null, [("c", 0, 32)]),
            (null, [("d", 0, 32)]),
        ], Rings(Plan(Nodes(8, "d", "c", "b", "a"))));
    }

    [Fact]
    public void AModelThatNeedsTwoOfFourEqualNodesGetsTwoTwoNodeRings()
    {
        Assert.Equal(
        [
            (null, [("a", 0, 16), ("b", 16, 32)]),
            (null, [("c", 0, 16), ("d", 16, 32)]),
        ], Rings(Plan(Nodes(5, "a", "b", "c", "d"))));
    }

    [Fact]
    public void ANodeLeftOverJoinsTheRingAsAnExtraStage()
    {
        // Three nodes where the model needs two: the third cannot hold a ring, and one more stage adds memory and throughput.
        Assert.Equal([(null, [("a", 0, 11), ("b", 11, 22), ("c", 22, 32)])], Rings(Plan(Nodes(5, "a", "b", "c"))));
    }

    [Fact]
    public void ANodeWithNoRoomForALayerSitsOut()
    {
        Assert.Equal([(null, [("a", 0, 32)])], Rings(Plan([Node("a", 8), Node("tiny", 0.1)])));
    }

    [Fact]
    public void UnequalNodesPairALargeOneWithTheSmallestThatCompletesIt()
    {
        // Largest first would pair the two 5 GB nodes and leave 2.5 + 2.5 GB, too little for a second ring.
        Assert.Equal(
        [
            (null, [("big1", 0, 22), ("small1", 22, 32)]),
            (null, [("big2", 0, 22), ("small2", 22, 32)]),
        ], Rings(Plan([Node("big1", 5), Node("big2", 5), Node("small1", 2.5), Node("small2", 2.5)])));
    }

    [Fact]
    public void HeterogeneousNodesGiveEachRingAsFewNodesAsItNeeds()
    {
        // 16 and 8 GB hold the model alone; 4 + 4 GB together; the 1 GB node is left over and joins the first ring with one
        // stage, as its last stage (room for the head and 2 layers).
        Assert.Equal(
        [
            (null, [("x16", 0, 30), ("z1", 30, 32)]),
            (null, [("y8", 0, 32)]),
            (null, [("v4", 0, 16), ("w4", 16, 32)]),
        ], Rings(Plan([Node("v4", 4), Node("w4", 4), Node("x16", 16), Node("y8", 8), Node("z1", 1)])));
    }

    [Fact]
    public void ALimitSpreadsTheNodesOverThatManyRings()
    {
        var nodes = Nodes(8, "a", "b", "c", "d");
        Assert.Equal(
        [
            (null, [("a", 0, 16), ("c", 16, 32)]),
            (null, [("b", 0, 16), ("d", 16, 32)]),
        ], Rings(Plan(nodes, new Replicas(2))));
        Assert.Equal(3, Plan(nodes, new Replicas(3)).Rings.Count);
        Assert.Equal(4, Plan(nodes, new Replicas(9)).Rings.Count);
    }

    [Fact]
    public void ALimitOfOneIsOneRingOverEveryNode()
    {
        NodeCapacity[] nodes = [Node("d", 6), Node("b", 12), Node("a", 6), Node("c", 3.5), Node("e", 12)];
        var ring = Assert.Single(Plan(nodes, new Replicas(1)).Rings);
        Assert.True(new PlannedRing(null, RingPlanner.Plan(nodes, Model, 1).Stages).SameLayout(ring));
    }

    [Fact]
    public void WhenNothingFitsTheErrorIsTheRingPlannersOne()
    {
        var result = Plan(Nodes(2, "a", "b"));
        Assert.False(result.Succeeded);
        Assert.Empty(result.Rings);
        Assert.Equal(RingPlanner.TryPlan(Nodes(2, "a", "b"), Model, 1).Error, result.Error);
        Assert.Contains("no nodes", Plan([]).Error);
    }

    [Fact]
    public void AJoiningNodeFormsANewRingAndLeavesTheOthersAlone()
    {
        var before = Published(Plan(Nodes(8, "a", "b")), 5, 6);
        Assert.Equal(
        [
            (5, [("a", 0, 32)]),
            (6, [("b", 0, 32)]),
            (null, [("c", 0, 32)]),
        ], Rings(Plan(Nodes(8, "a", "b", "c"), null, before)));
    }

    [Fact]
    public void AJoiningNodeThatCannotHoldARingJoinsTheRingWithFewestStages()
    {
        // Under a limit of 2, nodes arriving one at a time end as two 2-stage rings; each join re-plans one ring only.
        var two = Published(Plan(Nodes(8, "a", "b"), new Replicas(2)), 5, 6);
        var three = Plan(Nodes(8, "a", "b", "c"), new Replicas(2), two);
        Assert.Equal([(null, [("a", 0, 16), ("c", 16, 32)]), (6, [("b", 0, 32)])], Rings(three));
        var four = Plan(Nodes(8, "a", "b", "c", "d"), new Replicas(2), Published(three, 7));
        Assert.Equal([(7, [("a", 0, 16), ("c", 16, 32)]), (null, [("b", 0, 16), ("d", 16, 32)])], Rings(four));
    }

    [Fact]
    public void ALeavingNodeCostsOnlyItsOwnRing()
    {
        var before = Published(Plan(Nodes(8, "a", "b", "c")), 5, 6, 7);
        Assert.Equal([(5, [("a", 0, 32)]), (7, [("c", 0, 32)])], Rings(Plan(Nodes(8, "a", "c"), null, before)));

        // The survivor of a lost 2-node ring cannot hold the model alone; it sits out rather than disturb the working ring.
        var pairs = Published(Plan(Nodes(5, "a", "b", "c", "d")), 5, 6);
        Assert.Equal([(5, [("a", 0, 16), ("b", 16, 32)])], Rings(Plan(Nodes(5, "a", "b", "c"), null, pairs)));
        // Once another node joins, the two form a ring again.
        Assert.Equal([(5, [("a", 0, 16), ("b", 16, 32)]), (null, [("c", 0, 16), ("e", 16, 32)])],
            Rings(Plan(Nodes(5, "a", "b", "c", "e"), null, Published(Plan(Nodes(5, "a", "b", "c"), null, pairs)))));
    }

    [Fact]
    public void ASurvivorJoinsARingThatANewNodeChangesAnyway()
    {
        // a and b made a ring, c one of its own; b left and a small node d joined. d (no ring of its own) joins c's ring,
        // which changes it anyway, so a, larger than d and listed before it, must not sit out.
        var before = Published(Plan([Node("a", 5), Node("b", 5), Node("c", 8)]), 5, 6);
        Assert.Equal(2, before.Length);
        var ring = Assert.Single(Rings(Plan([Node("a", 5), Node("c", 8), Node("d", 1)], null, before)));
        Assert.Null(ring.Version);
        Assert.Equal(["a", "c", "d"], ring.Stages.Select(s => s.Node).Order());
    }

    [Fact]
    public void ARingWhoseNodesNoLongerHoldItIsPlannedAgain()
    {
        var before = Published(Plan(Nodes(8, "a", "b")), 5, 6);
        // b's memory shrank below the model: its ring dissolves, and b, too small for a ring of its own, joins a's.
        Assert.Equal([(null, [("a", 0, 23), ("b", 23, 32)])], Rings(Plan([Node("a", 8), Node("b", 3)], null, before)));
    }

    [Fact]
    public void ALowerLimitFoldsTheRingsBeyondItIntoTheFirst()
    {
        // A planner restarted with Replicas 1 over three one-node rings: one ring over every node, as pipeline-only plans it.
        var before = Published(Plan(Nodes(8, "a", "b", "c")), 5, 6, 7);
        var ring = Assert.Single(Plan(Nodes(8, "a", "b", "c"), new Replicas(1), before).Rings);
        Assert.Null(ring.Version);
        Assert.True(new PlannedRing(null, RingPlanner.Plan(Nodes(8, "a", "b", "c"), Model, 1).Stages).SameLayout(ring));
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("", null)]
    [InlineData("auto", null)]
    [InlineData(" AUTO ", null)]
    [InlineData("1", 1)]
    [InlineData("12", 12)]
    public void TheSettingIsAutoOrAPositiveInteger(string? text, int? max) => Assert.Equal(max, Replicas.Parse(text).Max);

    [Theory]
    [InlineData("0")]
    [InlineData("-2")]
    [InlineData("two")]
    [InlineData("1.5")]
    [InlineData("+3")]
    public void AnyOtherSettingIsAClearError(string text) =>
        Assert.Contains("set it to auto", Assert.Throws<InvalidOperationException>(() => Replicas.Parse(text)).Message);
}
