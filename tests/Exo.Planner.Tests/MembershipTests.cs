using Exo.Contracts.V1;
using Exo.Planner.Grpc;

namespace Exo.Planner.Tests;

public sealed class MembershipTests
{
    private static NodeEvent Event(NodeEvent.Types.Kind kind, string id, ulong availableBytes = 10_000_000_000, string endpoint = "http://10.0.0.2:50051", params string[] models)
    {
        var node = new NodeInfo { NodeId = id, GrpcEndpoint = endpoint, AvailableMemoryBytes = availableBytes, TotalMemoryBytes = 16_000_000_000 };
        node.ModelsOnDisk.AddRange(models.Length == 0 ? ["exo-tiny"] : models);
        return new NodeEvent { Kind = kind, Node = node };
    }

    private static NodeEvent Updated(string id, ulong availableBytes) => Event(NodeEvent.Types.Kind.Updated, id, availableBytes);

    [Fact]
    public void JoiningAndLeavingMatter()
    {
        var membership = new Membership();
        Assert.True(membership.Apply(Event(NodeEvent.Types.Kind.Added, "a")));
        Assert.True(membership.Apply(Event(NodeEvent.Types.Kind.Added, "b")));
        Assert.Equal(["a", "b"], membership.Snapshot().Select(n => n.NodeId).Order());

        Assert.True(membership.Apply(Event(NodeEvent.Types.Kind.Removed, "a")));
        Assert.False(membership.Apply(Event(NodeEvent.Types.Kind.Removed, "a")));
        Assert.Equal("b", Assert.Single(membership.Snapshot()).NodeId);
    }

    [Fact]
    public void MemoryMovesUnderTenPercentOfWhatWasLastTakenDoNotMatter()
    {
        var membership = new Membership();
        membership.Apply(Event(NodeEvent.Types.Kind.Added, "a", 10_000_000_000));

        // A worker loading its layers: memory falls by steps that are each small but add up.
        Assert.False(membership.Apply(Updated("a", 9_500_000_000)));
        Assert.False(membership.Apply(Updated("a", 9_100_000_000)));
        Assert.False(membership.Apply(Updated("a", 10_999_999_999)));
        Assert.Equal(10_000_000_000ul, Assert.Single(membership.Snapshot()).AvailableMemoryBytes);

        Assert.True(membership.Apply(Updated("a", 9_000_000_000)));
        Assert.Equal(9_000_000_000ul, Assert.Single(membership.Snapshot()).AvailableMemoryBytes);
        Assert.False(membership.Apply(Updated("a", 9_800_000_000)));
        Assert.True(membership.Apply(Updated("a", 9_950_000_000)));
    }

    [Fact]
    public void SpeedMovesOfTenPercentMatter()
    {
        // A worker measures itself again at each start: a few percent of noise must not shift layers.
        NodeEvent Measured(double bandwidth, double flops)
        {
            var change = Updated("a", 10_000_000_000);
            change.Node.BandwidthBytesPerSecond = bandwidth;
            change.Node.Flops = flops;
            return change;
        }

        var membership = new Membership();
        membership.Apply(Measured(100e9, 1e12));
        Assert.False(membership.Apply(Measured(95e9, 1.05e12)));
        Assert.True(membership.Apply(Measured(89e9, 1e12)));
        Assert.Equal(89e9, Assert.Single(membership.Snapshot()).BandwidthBytesPerSecond);
        Assert.True(membership.Apply(Measured(89e9, 0.8e12)));
        // FLOPS no longer measured: compute drops out of the node's predicted time.
        Assert.True(membership.Apply(Measured(89e9, 0)));
    }

    [Fact]
    public void ANodeThatHadNoFreeMemoryMattersWhenItGetsSome()
    {
        var membership = new Membership();
        membership.Apply(Event(NodeEvent.Types.Kind.Added, "a", 0));
        Assert.False(membership.Apply(Updated("a", 0)));
        Assert.True(membership.Apply(Updated("a", 1)));
    }

    [Fact]
    public void AnotherEndpointOrOtherModelsMatterButTheirOrderDoesNot()
    {
        var membership = new Membership();
        membership.Apply(Event(NodeEvent.Types.Kind.Added, "a", models: ["exo-tiny", "qwen"]));

        Assert.False(membership.Apply(Event(NodeEvent.Types.Kind.Updated, "a", models: ["qwen", "exo-tiny"])));
        Assert.True(membership.Apply(Event(NodeEvent.Types.Kind.Updated, "a", models: ["qwen"])));
        Assert.True(membership.Apply(Event(NodeEvent.Types.Kind.Updated, "a", endpoint: "http://10.0.0.9:50051", models: ["qwen"])));
        Assert.Equal("http://10.0.0.9:50051", Assert.Single(membership.Snapshot()).GrpcEndpoint);
    }

    [Fact]
    public void ResetReplacesEveryNodeAndEventsWithoutANodeAreIgnored()
    {
        var membership = new Membership();
        membership.Apply(Event(NodeEvent.Types.Kind.Added, "a"));
        membership.Reset([Event(NodeEvent.Types.Kind.Added, "b").Node, new NodeInfo()]);

        Assert.Equal("b", Assert.Single(membership.Snapshot()).NodeId);
        Assert.False(membership.Apply(new NodeEvent { Kind = NodeEvent.Types.Kind.Added }));
        Assert.False(membership.Apply(new NodeEvent { Kind = NodeEvent.Types.Kind.Removed, Node = new NodeInfo() }));
        // The listed members come again at the start of the watch; they change nothing.
        Assert.False(membership.Apply(Event(NodeEvent.Types.Kind.Added, "b")));
    }
}
