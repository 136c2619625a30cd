using Exo.Inference;
using Exo.Planner.Planning;

namespace Exo.Planner.Tests;

public sealed class RingPlannerTests
{
    private const long GB = 1_000_000_000;

    // 32 layers of 0.2 GB, 0.5 GB embeddings, 0.5 GB head: 7.4 GB in all.
    private static readonly ModelProfile ThirtyTwoLayers = Profile(32, layer: 0.2, embedding: 0.5, head: 0.5);

    private static ModelProfile Profile(int layers, double layer, double embedding, double head, bool tied = false,
        long kvPerToken = 0, int context = 0) =>
        new("m", layers, Bytes(layer), Bytes(embedding), Bytes(head), tied, kvPerToken, context);

    private static long Bytes(double gigabytes) => (long)Math.Round(gigabytes * GB);

    private static NodeCapacity Node(string id, double gigabytes) => new(id, Bytes(gigabytes));

    private static (string Node, int Start, int End)[] Ring(Placement placement) =>
        placement.Stages.Select(s => (s.NodeId, s.Layers.Start, s.Layers.End)).ToArray();

    [Fact]
    public void SingleNodeRunsEveryLayerAndHoldsEmbeddingsAndHead()
    {
        var placement = RingPlanner.Plan([Node("solo", 16)], ThirtyTwoLayers, version: 3);

        Assert.Equal([("solo", 0, 32)], Ring(placement));
        Assert.Equal(3, placement.Version);
        Assert.Equal("m", placement.ModelId);
        Assert.Equal(Bytes(7.4), placement.Stages[0].RequiredBytes);
    }

    [Fact]
    public void TwoEqualNodesSplitInHalfInIdOrder()
    {
        var placement = RingPlanner.Plan([Node("b", 8), Node("a", 8)], ThirtyTwoLayers, 1);

        Assert.Equal([("a", 0, 16), ("b", 16, 32)], Ring(placement));
        Assert.Equal(Bytes(0.5 + 3.2), placement.Stages[0].RequiredBytes);
        Assert.Equal(Bytes(3.2 + 0.5), placement.Stages[1].RequiredBytes);
    }

    [Fact]
    public void HeterogeneousNodesGetLayersInProportionToMemoryLargestFirst()
    {
        var placement = RingPlanner.Plan([Node("a", 8), Node("b", 8), Node("c", 16)], ThirtyTwoLayers, 1);

        Assert.Equal([("c", 0, 16), ("a", 16, 24), ("b", 24, 32)], Ring(placement));
    }

    [Fact]
    public void UnevenSplitsUseLargestRemainders()
    {
        // 10 layers over 7/5/3 GB: quotas 4.67, 3.33, 2.0; the one leftover layer goes to the largest remainder.
        var tenLayers = Profile(10, layer: 0.2, embedding: 0.1, head: 0.1);
        Assert.Equal([("x", 0, 5), ("y", 5, 8), ("z", 8, 10)],
            Ring(RingPlanner.Plan([Node("z", 3), Node("x", 7), Node("y", 5)], tenLayers, 1)));

        // 22 layers over 16/8/8 GB: quotas 11, 5.5, 5.5; the tie goes to the earlier ring position.
        var twentyTwo = Profile(22, layer: 0.2, embedding: 0.1, head: 0.1);
        Assert.Equal([("c", 0, 11), ("a", 11, 17), ("b", 17, 22)],
            Ring(RingPlanner.Plan([Node("b", 8), Node("c", 16), Node("a", 8)], twentyTwo, 1)));

        // 32 layers over three equal nodes: 10.67 each, the two leftovers go to the first two.
        Assert.Equal([("a", 0, 11), ("b", 11, 22), ("c", 22, 32)],
            Ring(RingPlanner.Plan([Node("c", 8), Node("b", 8), Node("a", 8)], ThirtyTwoLayers, 1)));
    }

    [Fact]
    public void NodeTooSmallForOneLayerIsLeftOutOfTheRing()
    {
        // "tiny" would be last and cannot even hold the 0.5 GB head; the others split 16:8 -> 21.33, 10.67.
        var placement = RingPlanner.Plan([Node("tiny", 0.1), Node("mid", 8), Node("big", 16)], ThirtyTwoLayers, 1);

        Assert.Equal([("big", 0, 21), ("mid", 21, 32)], Ring(placement));
    }

    [Fact]
    public void NodeWhoseShareRoundsToNoLayerIsLeftOut()
    {
        // 4 layers over 100 GB and 1 GB: quotas 3.96 and 0.04, so the small node gets none and the big one the head too.
        var fourLayers = Profile(4, layer: 0.2, embedding: 0.1, head: 0.1);
        var placement = RingPlanner.Plan([Node("small", 1), Node("big", 100)], fourLayers, 1);

        Assert.Equal([("big", 0, 4)], Ring(placement));
        Assert.Equal(Bytes(0.1 + 0.8 + 0.1), placement.Stages[0].RequiredBytes);
    }

    [Fact]
    public void ShareBeyondCapacityIsClampedAndTheExcessGoesToNodesWithRoom()
    {
        // Equal memory would give 10/10, but the last node also holds a 2.5 GB head and has room for only 7 layers.
        var heavyHead = Profile(20, layer: 0.2, embedding: 0.1, head: 2.5);
        Assert.Equal([("a", 0, 13), ("b", 13, 20)], Ring(RingPlanner.Plan([Node("a", 4), Node("b", 4)], heavyHead, 1)));

        // 30 layers over 10/5/5 GB: shares 15/8/7, but the last node fits only 4 beside its 4 GB head; the other 26
        // are split again 10:5 -> 17.33, 8.67 -> 17, 9.
        var thirty = Profile(30, layer: 0.25, embedding: 0.1, head: 4.0);
        var placement = RingPlanner.Plan([Node("c", 5), Node("b", 5), Node("a", 10)], thirty, 1);
        Assert.Equal([("a", 0, 17), ("b", 17, 26), ("c", 26, 30)], Ring(placement));
        Assert.Equal(Bytes(4.0 + 1.0), placement.Stages[2].RequiredBytes);
    }

    [Fact]
    public void TiedEmbeddingsAreHeldByTheLastStageToo()
    {
        // With a 1.5 GB tied embedding matrix the last of two 4 GB nodes holds it beside the head and still fits
        // (4 - 1.6) / 0.2 = 12 layers, so the even split stands. At 3 GB each the first fits 7 and the last 7: not 20,
        // although 5.6 GB is less than the 6 GB free, because the matrix is needed at both ends.
        var tied = Profile(20, layer: 0.2, embedding: 1.5, head: 0.1, tied: true);
        var even = RingPlanner.Plan([Node("a", 4), Node("b", 4)], tied, 1);
        Assert.Equal([("a", 0, 10), ("b", 10, 20)], Ring(even));
        Assert.Equal(Bytes(1.5 + 2.0 + 0.1), even.Stages[1].RequiredBytes);

        var result = RingPlanner.TryPlan([Node("a", 3), Node("b", 3)], tied, 1);
        Assert.StartsWith("model 'm' needs 5.6 GB, the cluster has 6.0 GB free, but not in pieces that fit", result.Error);

        // On one node the tied matrix is counted once.
        Assert.Equal(Bytes(1.5 + 4.0 + 0.1), RingPlanner.Plan([Node("a", 6)], tied, 1).Stages[0].RequiredBytes);
    }

    [Fact]
    public void KvCacheForThePlannedContextCountsAgainstEachLayer()
    {
        // 0.1 GB of weights plus 100 kB per token for 2000 tokens = 0.3 GB per layer; 8 layers need 2.4 GB + 0.2 GB.
        var withKv = Profile(8, layer: 0.1, embedding: 0.1, head: 0.1, kvPerToken: 100_000, context: 2000);
        Assert.Equal(Bytes(0.3), withKv.LayerCostBytes);
        Assert.Equal([("a", 0, 8)], Ring(RingPlanner.Plan([Node("a", 2.6)], withKv, 1)));
        Assert.False(RingPlanner.TryPlan([Node("a", 2.5)], withKv, 1).Succeeded);
    }

    [Fact]
    public void ModelThatDoesNotFitFailsWithHowMuchIsNeededAndFree()
    {
        // 0.5 + 0.6 + 40 * 0.2 = 9.1 GB on 4 + 2 GB.
        var big = Profile(40, layer: 0.2, embedding: 0.5, head: 0.6);
        var nodes = new[] { Node("a", 4), Node("b", 2) };

        var result = RingPlanner.TryPlan(nodes, big, 1);
        Assert.False(result.Succeeded);
        Assert.Null(result.Placement);
        Assert.Equal("model 'm' needs 9.1 GB, the cluster has 6.0 GB free", result.Error);
        Assert.Equal(result.Error, Assert.Throws<PlacementException>(() => RingPlanner.Plan(nodes, big, 1)).Message);
    }

    [Fact]
    public void EnoughMemoryInTotalButNotInPiecesSaysSo()
    {
        // 8.0 GB needed and 8.0 GB free, but a 3 GB layer fits beside neither the embeddings nor the 1.5 GB head.
        var chunky = Profile(2, layer: 3, embedding: 0.5, head: 1.5);
        var result = RingPlanner.TryPlan([Node("a", 4), Node("b", 4)], chunky, 1);

        Assert.False(result.Succeeded);
        Assert.StartsWith("model 'm' needs 8.0 GB, the cluster has 8.0 GB free, but not in pieces that fit: each layer needs 3.0 GB", result.Error);
    }

    [Fact]
    public void NoNodesIsAFailureNotACrash()
    {
        var result = RingPlanner.TryPlan([], ThirtyTwoLayers, 1);
        Assert.Equal("model 'm' needs 7.4 GB, but the cluster has no nodes", result.Error);
    }

    [Fact]
    public void InvalidInputsAreRejectedClearly()
    {
        Assert.Contains("listed twice", Assert.Throws<ArgumentException>(() =>
            RingPlanner.TryPlan([Node("a", 1), Node("a", 2)], ThirtyTwoLayers, 1)).Message);
        Assert.Contains("implausible", Assert.Throws<ArgumentException>(() =>
            RingPlanner.TryPlan([new NodeCapacity("a", -1)], ThirtyTwoLayers, 1)).Message);
        Assert.Contains("non-empty id", Assert.Throws<ArgumentException>(() =>
            RingPlanner.TryPlan([new NodeCapacity(" ", 1)], ThirtyTwoLayers, 1)).Message);
        Assert.Contains("layer count", Assert.Throws<ArgumentException>(() =>
            RingPlanner.TryPlan([Node("a", 1)], ThirtyTwoLayers with { LayerCount = 0 }, 1)).Message);
        Assert.Contains("overflow", Assert.Throws<ArgumentException>(() =>
            RingPlanner.TryPlan([Node("a", 1)], ThirtyTwoLayers with { KvBytesPerTokenPerLayer = long.MaxValue / 2, ContextTokens = 4 }, 1)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => RingPlanner.TryPlan([Node("a", 1)], ThirtyTwoLayers, 0));
    }

    [Fact]
    public void InputOrderDoesNotChangeThePlacement()
    {
        NodeCapacity[] nodes = [Node("d", 6), Node("b", 12), Node("a", 6), Node("c", 3.5), Node("e", 12)];
        var reference = RingPlanner.Plan(nodes, ThirtyTwoLayers, 1);
        // Quotas of 32 by 12/12/6/6/3.5: 9.72, 9.72, 4.86, 4.86, 2.84; the four leftovers go to a, d, c, then b (ties by id).
        Assert.Equal([("b", 0, 10), ("e", 10, 19), ("a", 19, 24), ("d", 24, 29), ("c", 29, 32)], Ring(reference));

        foreach (var permutation in Permutations(nodes))
        {
            var placement = RingPlanner.Plan(permutation, ThirtyTwoLayers, 1);
            Assert.True(placement.SameRingAs(reference), string.Join(",", permutation.Select(n => n.NodeId)));
        }
    }

    [Fact]
    public void EveryPlacementCoversEachLayerOnceWithinEachNodesMemory()
    {
        var random = new Random(1234);
        var placed = 0;
        for (var trial = 0; trial < 2000; trial++)
        {
            var profile = Profile(random.Next(1, 81), layer: random.Next(1, 100) / 100.0, embedding: random.Next(0, 300) / 100.0,
                head: random.Next(0, 300) / 100.0, tied: random.Next(2) == 0);
            var nodes = Enumerable.Range(0, random.Next(1, 7)).Select(i => Node($"n{i}", random.Next(0, 3000) / 100.0)).ToArray();
            var result = RingPlanner.TryPlan(nodes, profile, 1);
            if (!result.Succeeded)
            {
                Assert.StartsWith($"model 'm' needs ", result.Error);
                continue;
            }

            placed++;
            var stages = result.Placement!.Stages;
            Assert.Equal(0, stages[0].Layers.Start);
            Assert.Equal(profile.LayerCount, stages[^1].Layers.End);
            for (var i = 0; i < stages.Count; i++)
            {
                Assert.True(stages[i].Layers.Count > 0);
                if (i > 0) Assert.Equal(stages[i - 1].Layers.End, stages[i].Layers.Start);
                var node = nodes.Single(n => n.NodeId == stages[i].NodeId);
                Assert.True(stages[i].RequiredBytes <= node.AvailableMemoryBytes, $"trial {trial}: stage {i} overfills {node.NodeId}");
                if (i > 0) Assert.True(nodes.Single(n => n.NodeId == stages[i - 1].NodeId).AvailableMemoryBytes >= node.AvailableMemoryBytes);
            }
        }

        // The generator must exercise both outcomes for the invariants above to mean something.
        Assert.InRange(placed, 200, 1800);
    }

    [Fact]
    public void SameRingIgnoresTheVersion()
    {
        var first = RingPlanner.Plan([Node("a", 8), Node("b", 8)], ThirtyTwoLayers, 1);
        Assert.True(first.SameRingAs(RingPlanner.Plan([Node("a", 8), Node("b", 8)], ThirtyTwoLayers, 2)));
        Assert.False(first.SameRingAs(RingPlanner.Plan([Node("a", 8), Node("b", 9)], ThirtyTwoLayers, 2)));
        Assert.Equal(new LayerRange(16, 32), first.StageOf("b")!.Layers);
        Assert.Null(first.StageOf("zzz"));
    }

    private static IEnumerable<NodeCapacity[]> Permutations(NodeCapacity[] items) =>
        items.Length <= 1
            ? [items]
            : items.SelectMany((item, i) => Permutations([.. items[..i], .. items[(i + 1)..]]).Select(rest => (NodeCapacity[])[item, .. rest]));
}
