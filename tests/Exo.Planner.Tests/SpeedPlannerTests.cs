using Exo.Inference;
using Exo.Planner.Planning;

namespace Exo.Planner.Tests;

/// <summary>Placement by speed: nodes that measured their bandwidth (and FLOPS) get layers so that the slowest stage is as fast as it can be.</summary>
public sealed class SpeedPlannerTests
{
    private const long GB = 1_000_000_000;

    // An 8B-class model in bf16: 32 layers of 0.4 GB (0.2 G weights: 0.4 GFLOP a token), 1 GB of embeddings with
    // 8 kB rows, a 1 GB head (1 GFLOP a token): 14.8 GB in all.
    private static readonly ModelProfile EightB = new("m", 32, 4 * GB / 10, GB, GB, TiedEmbeddings: false, 0, 0,
        EmbeddingRowBytes: 8192, LayerOperations: 4 * GB / 10, HeadOperations: GB);

    private static NodeCapacity Node(string id, double gigabytes, double gigabytesPerSecond, double gigaflops = 0) =>
        new(id, (long)Math.Round(gigabytes * GB), gigabytesPerSecond * 1e9, gigaflops * 1e9);

    private static (string Node, int Start, int End)[] Ring(Placement placement) =>
        placement.Stages.Select(s => (s.NodeId, s.Layers.Start, s.Layers.End)).ToArray();

    private static StepPrediction Predict(Placement placement, NodeCapacity[] nodes, ModelProfile profile) =>
        StepTime.Predict(placement, nodes, profile) ?? throw new InvalidOperationException("no prediction");

    /// <summary>The same nodes without their speed: the memory-weighted split.</summary>
    private static Placement ByMemory(NodeCapacity[] nodes, ModelProfile profile) =>
        RingPlanner.Plan(nodes.Select(n => new NodeCapacity(n.NodeId, n.AvailableMemoryBytes)), profile, 1);

    [Fact]
    public void AFastGpuWithLittleMemoryTakesAllItHoldsAndTheHead()
    {
        // The GPU (900 GB/s, FLOPS not measured) holds 17 layers beside the head; the laptop (60 GB/s, 200 GFLOPS) must
        // run the other 15, 100 ms a token. As the last stage the laptop would also read the 1 GB head: 116.7 ms.
        NodeCapacity[] nodes = [Node("laptop", 16, 60, 200), Node("gpu", 8, 900)];
        var placement = RingPlanner.Plan(nodes, EightB, 1);

        Assert.Equal([("laptop", 0, 15), ("gpu", 15, 32)], Ring(placement));
        var predicted = Predict(placement, nodes, EightB);
        Assert.Equal(0.1, predicted.BottleneckSeconds, 1e-6);
        Assert.Equal(0.1 + 7.8 / 900, predicted.TokenSeconds, 1e-6);
        // By memory the laptop would take 21 layers and the ring run at its 140 ms.
        Assert.Equal([("laptop", 0, 21), ("gpu", 21, 32)], Ring(ByMemory(nodes, EightB)));
        Assert.Equal(0.14, Predict(ByMemory(nodes, EightB), nodes, EightB).BottleneckSeconds, 1e-6);
    }

    [Fact]
    public void ThreeUnequalMacsBalanceTheirStages()
    {
        // 80 layers of 0.8 GB and 1 GB each of embeddings and head (66 GB) on Macs of 400/200/100 GB/s with
        // 64/32/16 GB (GPUs through MoltenVK: FLOPS not measured). A layer takes 2, 4 and 8 ms. The slowest stage can
        // be 94 ms at best: 47 layers on the studio, 22 and the head on the pro (93 ms) and 11 on the mini (88 ms);
        // the studio first leaves the least total time among rings that reach it.
        var seventy = new ModelProfile("m", 80, 8 * GB / 10, GB, GB, false, 0, 0, EmbeddingRowBytes: 8192);
        NodeCapacity[] macs = [Node("mini", 16, 100), Node("pro", 32, 200), Node("studio", 64, 400)];
        var placement = RingPlanner.Plan(macs, seventy, 1);

        Assert.Equal([("studio", 0, 47), ("mini", 47, 58), ("pro", 58, 80)], Ring(placement));
        var predicted = Predict(placement, macs, seventy);
        Assert.Equal(0.094, predicted.BottleneckSeconds, 1e-6);
        Assert.Equal(0.094 + 0.088 + 0.093, predicted.TokenSeconds, 1e-6);
        // By memory (46/23/11, the mini last with the head) the slowest stage takes 98 ms.
        Assert.Equal(0.098, Predict(ByMemory(macs, seventy), macs, seventy).BottleneckSeconds, 1e-6);
    }

    [Fact]
    public void AFourToOnePairWithEqualMemoryIsWithinTenPercentOfTheBestSplit()
    {
        // Both hold the whole model. The fast node takes 28 layers (28 ms), the slow one 4 and the head (26 ms); alone
        // the fast node would take 34.5 ms a token, and by memory (16/16) the slow one 74 ms.
        NodeCapacity[] pair = [Node("slow", 16, 100), Node("fast", 16, 400)];
        var placement = RingPlanner.Plan(pair, EightB, 1);
        Assert.Equal([("fast", 0, 28), ("slow", 28, 32)], Ring(placement));

        var predicted = Predict(placement, pair, EightB);
        var best = AllSplits(pair, EightB).Min(s => s.Prediction.BottleneckSeconds);
        Assert.Equal(0.028, best, 1e-6);
        Assert.InRange(predicted.BottleneckSeconds, best, best * 1.10);
        Assert.Equal(best, predicted.BottleneckSeconds, 1e-12);
        Assert.Equal(0.074, Predict(ByMemory(pair, EightB), pair, EightB).BottleneckSeconds, 1e-6);
    }

    [Fact]
    public void AFourToOnePairThatNeedsBothMemoriesPutsTheHeadOnTheFastNode()
    {
        // 10 GB each: one holds 22 layers beside the embeddings or the head, so the slow node must run 10. First, that
        // is 40 ms; last, with the head, 50 ms. Both the slowest stage and one stream's total are the best of any split.
        NodeCapacity[] pair = [Node("fast", 10, 400), Node("slow", 10, 100)];
        var placement = RingPlanner.Plan(pair, EightB, 1);
        Assert.Equal([("slow", 0, 10), ("fast", 10, 32)], Ring(placement));

        var predicted = Predict(placement, pair, EightB);
        var splits = AllSplits(pair, EightB).ToList();
        Assert.Equal(splits.Min(s => s.Prediction.BottleneckSeconds), predicted.BottleneckSeconds, 1e-12);
        Assert.Equal(splits.Min(s => s.Prediction.TokenSeconds), predicted.TokenSeconds, 1e-12);
        Assert.Equal(0.040 + 0.0245, predicted.TokenSeconds, 1e-6);
    }

    [Fact]
    public void ANodeTooSlowToBeWorthALayerRunsOneFirstAndIsLeftOutOnlyWhenLayersRunShort()
    {
        // One layer on the Pi (5 GB/s) takes 80 ms, more than the whole model on the studio (37 ms); a measurement can
        // be that far off on a busy machine, so it still runs one layer, as the first stage (as the last, with the
        // head, it would take 280 ms).
        NodeCapacity[] nodes = [Node("pi", 8, 5), Node("studio", 64, 400)];
        var placement = RingPlanner.Plan(nodes, EightB, 1);
        Assert.Equal([("pi", 0, 1), ("studio", 1, 32)], Ring(placement));
        Assert.Equal(0.08, Predict(placement, nodes, EightB).BottleneckSeconds, 1e-5);
        // By memory it would hold 4 layers and the head: 520 ms a token.
        Assert.Equal([("studio", 0, 28), ("pi", 28, 32)], Ring(ByMemory(nodes, EightB)));

        // With 10 GB the studio cannot hold the model: the Pi runs the 10 layers that do not fit, first (800 ms)
        // rather than last with the head (1 s).
        NodeCapacity[] cramped = [Node("pi", 8, 5), Node("studio", 10, 400)];
        Assert.Equal([("pi", 0, 10), ("studio", 10, 32)], Ring(RingPlanner.Plan(cramped, EightB, 1)));

        // Three nodes and two layers: not everyone can join, and the Pi is left out. A layer on the mini (4 ms) and one
        // with the head on the studio (3.5 ms) beat the studio alone (4.5 ms).
        var twoLayers = EightB with { LayerCount = 2 };
        NodeCapacity[] three = [Node("pi", 8, 5), Node("studio", 64, 400), Node("mini", 16, 100)];
        Assert.Equal([("mini", 0, 1), ("studio", 1, 2)], Ring(RingPlanner.Plan(three, twoLayers, 1)));
    }

    [Fact]
    public void ANodeShortOfFlopsIsSlowerThanItsBandwidthSays()
    {
        // "wide" reads 200 GB/s but computes 50 GFLOPS: 8 ms a layer and 20 ms for the head; "narrow" reads 100 GB/s
        // with 1 TFLOPS: 4 ms a layer. Narrow takes 23 layers (92 ms), wide 9 and the head (92 ms).
        NodeCapacity[] nodes = [Node("wide", 16, 200, 50), Node("narrow", 16, 100, 1000)];
        var placement = RingPlanner.Plan(nodes, EightB, 1);
        Assert.Equal([("narrow", 0, 23), ("wide", 23, 32)], Ring(placement));
        Assert.Equal(0.092, Predict(placement, nodes, EightB).BottleneckSeconds, 1e-6);

        // Without FLOPS only bandwidth counts, and wide is the faster one: 23 layers (46 ms) to narrow's 9 and the head (46 ms).
        NodeCapacity[] unknown = [Node("wide", 16, 200), Node("narrow", 16, 100)];
        Assert.Equal([("wide", 0, 23), ("narrow", 23, 32)], Ring(RingPlanner.Plan(unknown, EightB, 1)));
    }

    [Fact]
    public void TiesGoToTheCanonicalOrder()
    {
        // Twins: the head (2.5 layers' worth) goes to the second by id, which takes 15 layers (70 ms) to the first's 17 (68 ms).
        Assert.Equal([("a", 0, 17), ("b", 17, 32)], Ring(RingPlanner.Plan([Node("b", 8, 100), Node("a", 8, 100)], EightB, 1)));

        // Triplets: every split of the layers costs one stream the same, so the first stages fill first (12 layers, 48 ms)
        // and the last, with the head, takes the 8 left.
        NodeCapacity[] triplets = [Node("c", 8, 100), Node("a", 8, 100), Node("b", 8, 100)];
        var reference = RingPlanner.Plan(triplets, EightB, 1);
        Assert.Equal([("a", 0, 12), ("b", 12, 24), ("c", 24, 32)], Ring(reference));
        foreach (var permutation in new[] { triplets, [.. triplets.Reverse()], [triplets[1], triplets[0], triplets[2]] })
            Assert.True(RingPlanner.Plan(permutation, EightB, 1).SameRingAs(reference));
    }

    [Fact]
    public void AnyNodeWithoutAMeasurementKeepsTheMemoryWeightedSplit()
    {
        NodeCapacity[] nodes = [Node("a", 8, 400), Node("b", 8, 0), Node("c", 16, 100)];
        var placement = RingPlanner.Plan(nodes, EightB, 1);

        Assert.True(placement.SameRingAs(ByMemory(nodes, EightB)));
        Assert.Equal([("c", 0, 16), ("a", 16, 24), ("b", 24, 32)], Ring(placement));
        Assert.Null(StepTime.Predict(placement, nodes, EightB));
    }

    [Fact]
    public void ThePlannedRingIsTheBestOfEverySplitOfRandomClusters()
    {
        var random = new Random(18);
        var placed = 0;
        for (var trial = 0; trial < 150; trial++)
        {
            var layers = random.Next(1, 9);
            var embedding = random.Next(0, 100) * GB / 100;
            var profile = new ModelProfile("m", layers, random.Next(1, 100) * GB / 100, embedding,
                random.Next(0, 200) * GB / 100, random.Next(2) == 0, 0, 0, EmbeddingRowBytes: Math.Min(random.Next(0, 1000), embedding),
                LayerOperations: random.Next(0, 100) * GB / 100, HeadOperations: random.Next(0, 200) * GB / 100);
            var nodes = Enumerable.Range(0, random.Next(1, 5))
                .Select(i => Node($"n{i}", random.Next(0, 600) / 100.0, random.Next(1, 800), random.Next(3) == 0 ? 0 : random.Next(10, 2000)))
                .ToArray();
            var result = RingPlanner.TryPlan(nodes, profile, 1);
            // Every node with memory for a layer runs one, unless no ring of all of them holds the model.
            var joining = nodes.Where(n => n.AvailableMemoryBytes >= profile.LayerCostBytes).Select(n => n.NodeId).ToHashSet();
            var all = AllSplits(nodes, profile).ToList();
            var everyone = all.Where(s => joining.SetEquals(s.Placement.Stages.Select(stage => stage.NodeId))).ToList();
            var splits = everyone.Count > 0 ? everyone : all;
            Assert.Equal(splits.Count > 0, result.Succeeded);
            if (!result.Succeeded) continue;

            placed++;
            var placement = result.Placement!;
            Assert.Contains(splits, s => s.Placement.SameRingAs(placement));
            var predicted = Predict(placement, nodes, profile);
            var best = splits.Min(s => s.Prediction.BottleneckSeconds);
            Assert.InRange(predicted.BottleneckSeconds, best, best * (1 + 1e-4));
            // Of the splits as fast under load, the least time for one stream.
            var leastTotal = splits.Where(s => s.Prediction.BottleneckSeconds <= best * (1 + 1e-4)).Min(s => s.Prediction.TokenSeconds);
            Assert.InRange(predicted.TokenSeconds, leastTotal * (1 - 1e-9), leastTotal * (1 + 1e-4));
            Assert.True(RingPlanner.Plan([.. nodes.Reverse()], profile, 1).SameRingAs(placement), $"trial {trial}: the order of the nodes matters");
        }

        Assert.InRange(placed, 40, 140);
    }

    [Fact]
    public void PredictionNeedsEveryStagesNodeMeasured()
    {
        NodeCapacity[] nodes = [Node("a", 8, 100), Node("b", 8, 100)];
        var placement = RingPlanner.Plan(nodes, EightB, 1);

        // Each stage: its layers' 0.4 GB at 100 GB/s; the first also an 8 kB row, the last the 1 GB head.
        var predicted = Predict(placement, nodes, EightB);
        Assert.Equal([(17 * 0.4e9 + 8192) / 100e9, (15 * 0.4e9 + 1e9) / 100e9], predicted.StageSeconds);
        Assert.Null(StepTime.Predict(placement, [nodes[0]], EightB));
        Assert.Null(StepTime.Predict(placement, [nodes[0], nodes[1] with { BandwidthBytesPerSecond = 0 }], EightB));
    }

    [Fact]
    public void ImplausibleSpeedsAreRejectedClearly()
    {
        Assert.Contains("implausible bandwidth", Assert.Throws<ArgumentException>(() => RingPlanner.TryPlan([Node("a", 8, -1)], EightB, 1)).Message);
        Assert.Contains("implausible bandwidth", Assert.Throws<ArgumentException>(() =>
            RingPlanner.TryPlan([new NodeCapacity("a", GB, double.NaN)], EightB, 1)).Message);
        Assert.Contains("implausible bandwidth", Assert.Throws<ArgumentException>(() => RingPlanner.TryPlan([Node("a", 8, 1e7)], EightB, 1)).Message);
        Assert.Contains("implausible compute", Assert.Throws<ArgumentException>(() =>
            RingPlanner.TryPlan([new NodeCapacity("a", GB, 1e11, double.PositiveInfinity)], EightB, 1)).Message);
        Assert.Contains("embedding row", Assert.Throws<ArgumentException>(() =>
            RingPlanner.TryPlan([Node("a", 8, 100)], EightB with { EmbeddingRowBytes = 2 * GB }, 1)).Message);
        Assert.Contains("operations", Assert.Throws<ArgumentException>(() =>
            RingPlanner.TryPlan([Node("a", 8, 100)], EightB with { LayerOperations = -1 }, 1)).Message);
    }

    /// <summary>Every ring of distinct nodes and every split of the layers over it (each stage at least one) that fits each node's memory.</summary>
    private static IEnumerable<(Placement Placement, StepPrediction Prediction)> AllSplits(NodeCapacity[] nodes, ModelProfile profile)
    {
        foreach (var ring in Arrangements(nodes))
        {
            foreach (var counts in Compositions(profile.LayerCount, ring.Length))
            {
                var stages = new PlacementStage[ring.Length];
                var start = 0;
                for (var i = 0; i < ring.Length; i++)
                {
                    var bytes = profile.FixedBytes(first: i == 0, last: i == ring.Length - 1) + counts[i] * profile.LayerCostBytes;
                    stages[i] = new PlacementStage(ring[i].NodeId, new LayerRange(start, start + counts[i]), bytes);
                    start += counts[i];
                }

                if (stages.Select((s, i) => s.RequiredBytes <= ring[i].AvailableMemoryBytes).All(fits => fits))
                {
                    var placement = new Placement(profile.ModelId, 1, stages);
                    yield return (placement, Predict(placement, nodes, profile));
                }
            }
        }
    }

    private static IEnumerable<NodeCapacity[]> Arrangements(NodeCapacity[] nodes) =>
        nodes.SelectMany((node, i) => Arrangements([.. nodes[..i], .. nodes[(i + 1)..]]).Select(rest => (NodeCapacity[])[node, .. rest]).Prepend([node]));

    private static IEnumerable<int[]> Compositions(int total, int parts) =>
        parts == 1
            ? [[total]]
            : Enumerable.Range(1, Math.Max(0, total - parts + 1)).SelectMany(first => Compositions(total - first, parts - 1).Select(rest => (int[])[first, .. rest]));
}
