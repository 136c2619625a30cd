using Exo.Registry.Store;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Exo.Registry.Tests;

[Collection(RedisCollection.Name)]
public sealed class RedisNodeStoreTests(RedisServer redis) : NodeStoreContract
{
    // Each test gets its own key space on the shared server.
    private readonly string _prefix = $"test-{Guid.NewGuid():N}:";

    protected override async Task<INodeStore> CreateStoreAsync() => await Connect();

    private Task<RedisNodeStore> Connect() =>
        RedisNodeStore.ConnectAsync(redis.Configuration, NullLogger<RedisNodeStore>.Instance, _prefix, SweepInterval);

    [Fact]
    public async Task TwoRegistryInstancesShareMembershipConflictsAndExpiry()
    {
        await using var first = await Connect();
        await using var second = await Connect();
        using var stop = new CancellationTokenSource();
        await using var watchFirst = first.WatchAsync(stop.Token).GetAsyncEnumerator(stop.Token);
        await using var watchSecond = second.WatchAsync(stop.Token).GetAsyncEnumerator(stop.Token);

        await first.RegisterAsync(Node("node-a", host: "studio-1"), Ttl, CancellationToken.None);
        Assert.Equal((NodeChangeKind.Added, "node-a"), ((await Next(watchSecond)).Kind, watchSecond.Current.Node.NodeId));
        Assert.Equal("studio-1", Assert.Single(await second.ListAsync(CancellationToken.None)).Host);
        await Assert.ThrowsAsync<NodeConflictException>(() =>
            second.RegisterAsync(Node("node-a", token: "clone", host: "studio-2"), Ttl, CancellationToken.None));

        // Both instances sweep, but the expiry is reported once.
        Assert.Equal(NodeChangeKind.Added, (await Next(watchFirst)).Kind);
        Assert.Equal(NodeChangeKind.Removed, (await Next(watchFirst)).Kind);
        Assert.Equal(NodeChangeKind.Removed, (await Next(watchSecond)).Kind);
        await first.RegisterAsync(Node("node-b"), Ttl, CancellationToken.None);
        Assert.Equal((NodeChangeKind.Added, "node-b"), ((await Next(watchFirst)).Kind, watchFirst.Current.Node.NodeId));
        Assert.Equal((NodeChangeKind.Added, "node-b"), ((await Next(watchSecond)).Kind, watchSecond.Current.Node.NodeId));
        await stop.CancelAsync();
    }

    [Fact]
    public async Task KeysFollowTheDocumentedLayoutAndExpireWithTheLease()
    {
        await using var store = await Connect();
        await store.RegisterAsync(Node("node-a"), TimeSpan.FromSeconds(5), CancellationToken.None);

        using var raw = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        var db = raw.GetDatabase();
        var ttl = await db.KeyTimeToLiveAsync(_prefix + "node:node-a");
        Assert.NotNull(ttl);
        Assert.InRange(ttl.Value, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(5));
        Assert.Equal("instance-1", (string?)await db.HashGetAsync(_prefix + "node:node-a", "token"));
        Assert.True(await db.HashExistsAsync(_prefix + "nodes", "node-a"));
    }

    [Fact]
    public async Task ADamagedRecordIsSkippedAndTheRestStillListed()
    {
        await using var store = await Connect();
        await store.RegisterAsync(Node("node-a"), TimeSpan.FromSeconds(30), CancellationToken.None);
        await store.RegisterAsync(Node("node-b"), TimeSpan.FromSeconds(30), CancellationToken.None);

        using var raw = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        await raw.GetDatabase().HashSetAsync(_prefix + "node:node-a", "record", "{\"nodeId\": 42");

        Assert.Equal("node-b", Assert.Single(await store.ListAsync(CancellationToken.None)).NodeId);
    }

    [Fact]
    public async Task AMalformedChangeMessageIsIgnored()
    {
        await using var store = await Connect();
        using var stop = new CancellationTokenSource();
        await using var watch = store.WatchAsync(stop.Token).GetAsyncEnumerator(stop.Token);

        using var raw = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        var channel = new RedisChannel(_prefix + "nodes:changes", RedisChannel.PatternMode.Literal);
        await raw.GetSubscriber().PublishAsync(channel, "not json");
        await raw.GetSubscriber().PublishAsync(channel, "{\"kind\": 7}");
        await store.RegisterAsync(Node("node-a"), Ttl, CancellationToken.None);

        Assert.Equal((NodeChangeKind.Added, "node-a"), ((await Next(watch)).Kind, watch.Current.Node.NodeId));
        await stop.CancelAsync();
    }

    [Fact]
    public async Task NoServerIsAClearError()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => RedisNodeStore.ConnectAsync(
            "127.0.0.1:1,connectTimeout=500", NullLogger<RedisNodeStore>.Instance));
        Assert.StartsWith("cannot connect to Redis at '127.0.0.1:1,connectTimeout=500'", error.Message);
    }
}
