using System.Diagnostics;
using Exo.Contracts;
using Exo.Registry.Store;

namespace Exo.Registry.Tests;

/// <summary>The behaviour every <see cref="INodeStore"/> must have; each store runs these against a fresh, isolated instance.</summary>
public abstract class NodeStoreContract
{
    protected static readonly TimeSpan Ttl = TimeSpan.FromSeconds(1);
    protected static readonly TimeSpan SweepInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    protected abstract Task<INodeStore> CreateStoreAsync();

    protected static NodeRecord Node(string id, string token = "instance-1", string host = "mac-mini") => new()
    {
        NodeId = id,
        InstanceToken = token,
        GrpcEndpoint = "http://10.0.0.7:50051",
        Host = host,
        Os = "macOS 15.1",
        Arch = "arm64",
        Backend = "cpu",
        TotalMemoryBytes = 32_000_000_000,
        AvailableMemoryBytes = 24_000_000_000,
        MemoryBandwidthBytesPerSecond = 1.2e11,
        Flops = 3.5e12,
        ModelsOnDisk = ["llama-3.2-1b", "qwen2.5-0.5b"],
        Version = "0.1.0",
    };

    protected static async Task<NodeChange> Next(IAsyncEnumerator<NodeChange> watch)
    {
        Assert.True(await watch.MoveNextAsync().AsTask().WaitAsync(Patience), "the watch ended");
        return watch.Current;
    }

    [Fact]
    public async Task RegisteredNodeIsListedWithItsDetailsAndTimes()
    {
        await using var store = await CreateStoreAsync();
        var before = DateTimeOffset.UtcNow.AddMilliseconds(-1);

        var stored = await store.RegisterAsync(Node("node-a"), Ttl, CancellationToken.None);
        await store.RegisterAsync(Node("node-0", token: "other", host: "linux-box"), Ttl, CancellationToken.None);

        var listed = await store.ListAsync(CancellationToken.None);
        Assert.Equal(["node-0", "node-a"], listed.Select(n => n.NodeId));
        Assert.True(Node("node-a").SameDetailsAs(listed[1]));
        Assert.False(Node("node-a").SameDetailsAs(listed[1] with { ModelsOnDisk = ["llama-3.2-1b"] }));
        Assert.InRange(listed[1].RegisteredAt, before, DateTimeOffset.UtcNow);
        Assert.Equal(stored.RegisteredAt, listed[1].RegisteredAt);
        Assert.True(listed[1].LastSeenAt >= listed[1].RegisteredAt);
    }

    [Fact]
    public async Task RegisteringAgainFromTheSameInstanceUpdatesAndKeepsTheRegistrationTime()
    {
        await using var store = await CreateStoreAsync();
        var first = await store.RegisterAsync(Node("node-a"), Ttl, CancellationToken.None);
        await Task.Delay(20);

        var changed = Node("node-a") with { AvailableMemoryBytes = 1_000, ModelsOnDisk = ["tiny"] };
        var second = await store.RegisterAsync(changed, Ttl, CancellationToken.None);

        Assert.Equal(first.RegisteredAt, second.RegisteredAt);
        Assert.True(second.LastSeenAt > first.LastSeenAt);
        Assert.True(changed.SameDetailsAs(Assert.Single(await store.ListAsync(CancellationToken.None))));
    }

    [Fact]
    public async Task ASecondInstanceOfALiveNodeIdIsRefusedAsAProbableClone()
    {
        await using var store = await CreateStoreAsync();
        await store.RegisterAsync(Node("node-a", token: "first", host: "studio-1"), Ttl, CancellationToken.None);

        var refused = await Assert.ThrowsAsync<NodeConflictException>(() =>
            store.RegisterAsync(Node("node-a", token: "second", host: "studio-2"), Ttl, CancellationToken.None));

        Assert.Contains("node id 'node-a' is already registered by host 'studio-1'", refused.Message);
        Assert.Contains("registration from host 'studio-2' is refused", refused.Message);
        Assert.Contains($"cloned", refused.Message);
        Assert.Contains($"delete the '{NodeIdentity.FileName}' file", refused.Message);
        Assert.Equal("studio-1", Assert.Single(await store.ListAsync(CancellationToken.None)).Host);

        // The displaced instance may neither renew nor remove the lease it does not hold.
        await Assert.ThrowsAsync<NodeConflictException>(() => store.HeartbeatAsync("node-a", "second", CancellationToken.None));
        await Assert.ThrowsAsync<NodeConflictException>(() => store.DeregisterAsync("node-a", "second", CancellationToken.None));
    }

    [Fact]
    public async Task HeartbeatsKeepTheLeaseAliveBeyondItsTtl()
    {
        // A longer lease than the other tests use: heartbeats every 200 ms must keep it even when a loaded CI machine
        // delays them by a second or more.
        var ttl = TimeSpan.FromSeconds(3);
        await using var store = await CreateStoreAsync();
        var registered = await store.RegisterAsync(Node("node-a"), ttl, CancellationToken.None);

        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < ttl * 1.5)
        {
            Assert.True(await store.HeartbeatAsync("node-a", "instance-1", CancellationToken.None));
            await Task.Delay(TimeSpan.FromMilliseconds(200));
        }

        var node = Assert.Single(await store.ListAsync(CancellationToken.None));
        Assert.True(node.LastSeenAt - registered.LastSeenAt >= ttl, $"last seen {node.LastSeenAt:O}, registered {registered.LastSeenAt:O}");
    }

    [Fact]
    public async Task ASilentNodeDisappearsWithinItsTtlPlusASweepAndWatchersAreTold()
    {
        await using var store = await CreateStoreAsync();
        using var stop = new CancellationTokenSource();
        await using var watch = store.WatchAsync(stop.Token).GetAsyncEnumerator(stop.Token);
        await store.RegisterAsync(Node("node-a"), Ttl, CancellationToken.None);
        Assert.Equal(NodeChangeKind.Added, (await Next(watch)).Kind);

        var clock = Stopwatch.StartNew();
        var removed = await Next(watch);
        Assert.Equal(NodeChangeKind.Removed, removed.Kind);
        Assert.True(Node("node-a").SameDetailsAs(removed.Node));
        Assert.InRange(clock.Elapsed, Ttl / 2, Ttl + SweepInterval + TimeSpan.FromSeconds(2));

        Assert.Empty(await store.ListAsync(CancellationToken.None));
        Assert.False(await store.HeartbeatAsync("node-a", "instance-1", CancellationToken.None));

        // Once the lease is gone the id is free again, even for another instance.
        await store.RegisterAsync(Node("node-a", token: "instance-2"), Ttl, CancellationToken.None);
        Assert.Equal(NodeChangeKind.Added, (await Next(watch)).Kind);
        await stop.CancelAsync();
    }

    [Fact]
    public async Task DeregisteringRemovesTheNodeAndTellsWatchers()
    {
        await using var store = await CreateStoreAsync();
        await store.RegisterAsync(Node("node-a"), Ttl, CancellationToken.None);
        using var stop = new CancellationTokenSource();
        await using var watch = store.WatchAsync(stop.Token).GetAsyncEnumerator(stop.Token);
        Assert.Equal(NodeChangeKind.Added, (await Next(watch)).Kind);

        Assert.True(await store.DeregisterAsync("node-a", "instance-1", CancellationToken.None));
        var change = await Next(watch);
        Assert.Equal((NodeChangeKind.Removed, "node-a"), (change.Kind, change.Node.NodeId));
        Assert.Empty(await store.ListAsync(CancellationToken.None));

        Assert.False(await store.DeregisterAsync("node-a", "instance-1", CancellationToken.None));
        Assert.False(await store.DeregisterAsync("no such node", "instance-1", CancellationToken.None));
        Assert.False(await store.HeartbeatAsync("never-registered", "instance-1", CancellationToken.None));
        await stop.CancelAsync();
    }

    [Fact]
    public async Task AWatchStartsWithTheLiveNodesThenStreamsChangesInOrderUntilCancelled()
    {
        await using var store = await CreateStoreAsync();
        await store.RegisterAsync(Node("node-b"), TimeSpan.FromSeconds(30), CancellationToken.None);
        await store.RegisterAsync(Node("node-a"), TimeSpan.FromSeconds(30), CancellationToken.None);

        using var stop = new CancellationTokenSource();
        await using var watch = store.WatchAsync(stop.Token).GetAsyncEnumerator(stop.Token);
        Assert.Equal((NodeChangeKind.Added, "node-a"), ((await Next(watch)).Kind, watch.Current.Node.NodeId));
        Assert.Equal((NodeChangeKind.Added, "node-b"), ((await Next(watch)).Kind, watch.Current.Node.NodeId));

        await store.RegisterAsync(Node("node-c"), TimeSpan.FromSeconds(30), CancellationToken.None);
        await store.RegisterAsync(Node("node-a") with { Backend = "cuda" }, TimeSpan.FromSeconds(30), CancellationToken.None);
        await store.DeregisterAsync("node-b", "instance-1", CancellationToken.None);

        Assert.Equal((NodeChangeKind.Added, "node-c"), ((await Next(watch)).Kind, watch.Current.Node.NodeId));
        Assert.Equal((NodeChangeKind.Updated, "cuda"), ((await Next(watch)).Kind, watch.Current.Node.Backend));
        Assert.Equal((NodeChangeKind.Removed, "node-b"), ((await Next(watch)).Kind, watch.Current.Node.NodeId));

        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watch.MoveNextAsync().AsTask().WaitAsync(Patience));
    }

    [Fact]
    public async Task InvalidRegistrationsAreRejectedWithTheFieldNamed()
    {
        await using var store = await CreateStoreAsync();
        async Task<string> Rejected(NodeRecord node, TimeSpan? ttl = null) =>
            (await Assert.ThrowsAnyAsync<ArgumentException>(() => store.RegisterAsync(node, ttl ?? Ttl, CancellationToken.None))).Message;

        Assert.Contains("node id '../etc' is invalid", await Rejected(Node("../etc")));
        Assert.Contains("gRPC endpoint 'tcp://x:1'", await Rejected(Node("n") with { GrpcEndpoint = "tcp://x:1" }));
        Assert.Contains("available (9) <= total (8)", await Rejected(Node("n") with { TotalMemoryBytes = 8, AvailableMemoryBytes = 9 }));
        Assert.Contains("bandwidth and FLOPS", await Rejected(Node("n") with { Flops = double.NaN }));
        Assert.Contains("host must be non-empty", await Rejected(Node("n") with { Host = "" }));
        Assert.Contains("model name", await Rejected(Node("n") with { ModelsOnDisk = ["ok", "bad\nname"] }));
        Assert.Contains("a lease lasts", await Rejected(Node("n"), TimeSpan.Zero));
        Assert.Empty(await store.ListAsync(CancellationToken.None));
    }
}
