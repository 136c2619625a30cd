using Exo.Registry.Store;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Exo.Registry.Tests;

[Collection(RedisCollection.Name)]
public sealed class RedisNodeStoreTests(RedisServer redis) : NodeStoreContract, IAsyncLifetime
{
    // Each test gets its own key space on the shared server, and each store its own connection, as a registry process has.
    private readonly RedisKeyspace _keys = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _keys.DisposeAsync();

    protected override async Task<INodeStore> CreateStoreAsync() => await Start();

    /// <summary>A started store on a connection of its own: another registry instance.</summary>
    private async Task<RedisNodeStore> Start()
    {
        var store = new RedisNodeStore(await _keys.ConnectAsync(redis.Configuration), NullLogger<RedisNodeStore>.Instance, _keys.Prefix, SweepInterval);
        await store.StartAsync(CancellationToken.None);
        return store;
    }

    [Fact]
    public async Task TwoRegistryInstancesShareMembershipConflictsAndExpiry()
    {
        await using var first = await Start();
        await using var second = await Start();
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
    public async Task AStoppedStoreEndsItsWatchesAndLeavesTheConnectionToItsOwner()
    {
        var connection = await _keys.ConnectAsync(redis.Configuration);
        var store = new RedisNodeStore(connection, NullLogger<RedisNodeStore>.Instance, _keys.Prefix, SweepInterval);
        await store.StartAsync(CancellationToken.None);
        await using var watch = store.WatchAsync(CancellationToken.None).GetAsyncEnumerator();
        await store.RegisterAsync(Node("node-a"), Ttl, CancellationToken.None);
        Assert.Equal(NodeChangeKind.Added, (await Next(watch)).Kind);

        await store.StopAsync(CancellationToken.None);
        Assert.False(await watch.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
        await store.DisposeAsync();
        Assert.True(connection.IsConnected);
        Assert.Equal("instance-1", (string?)await connection.GetDatabase().HashGetAsync(_keys.Prefix + "node:node-a", "token"));
    }

    [Fact]
    public async Task KeysFollowTheDocumentedLayoutAndExpireWithTheLease()
    {
        await using var store = await Start();
        await store.RegisterAsync(Node("node-a"), TimeSpan.FromSeconds(5), CancellationToken.None);

        var db = (await _keys.ConnectAsync(redis.Configuration)).GetDatabase();
        var ttl = await db.KeyTimeToLiveAsync(_keys.Prefix + "node:node-a");
        Assert.NotNull(ttl);
        Assert.InRange(ttl.Value, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(5));
        Assert.Equal("instance-1", (string?)await db.HashGetAsync(_keys.Prefix + "node:node-a", "token"));
        Assert.True(await db.HashExistsAsync(_keys.Prefix + "nodes", "node-a"));
    }

    [Fact]
    public async Task ADamagedRecordIsSkippedAndTheRestStillListed()
    {
        await using var store = await Start();
        await store.RegisterAsync(Node("node-a"), TimeSpan.FromSeconds(30), CancellationToken.None);
        await store.RegisterAsync(Node("node-b"), TimeSpan.FromSeconds(30), CancellationToken.None);

        await (await _keys.ConnectAsync(redis.Configuration)).GetDatabase().HashSetAsync(_keys.Prefix + "node:node-a", "record", "{\"nodeId\": 42");

        Assert.Equal("node-b", Assert.Single(await store.ListAsync(CancellationToken.None)).NodeId);
    }

    [Fact]
    public async Task AMalformedChangeMessageIsIgnored()
    {
        await using var store = await Start();
        using var stop = new CancellationTokenSource();
        await using var watch = store.WatchAsync(stop.Token).GetAsyncEnumerator(stop.Token);

        var subscriber = (await _keys.ConnectAsync(redis.Configuration)).GetSubscriber();
        var channel = RedisChannel.Literal(_keys.Prefix + "nodes:changes");
        await subscriber.PublishAsync(channel, "not json");
        await subscriber.PublishAsync(channel, "{\"kind\": 7}");
        await store.RegisterAsync(Node("node-a"), Ttl, CancellationToken.None);

        Assert.Equal((NodeChangeKind.Added, "node-a"), ((await Next(watch)).Kind, watch.Current.Node.NodeId));
        await stop.CancelAsync();
    }

    [Fact]
    public async Task NoServerIsAClearErrorNamingTheAddress()
    {
        // As Aspire's client connects: it keeps retrying in the background rather than failing the connect.
        var port = Ports.Free();
        var nowhere = await _keys.ConnectAsync($"127.0.0.1:{port},abortConnect=false,connectTimeout=500");
        await using var store = new RedisNodeStore(nowhere, NullLogger<RedisNodeStore>.Instance, _keys.Prefix);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => store.StartAsync(CancellationToken.None));
        Assert.StartsWith($"cannot reach Redis at 127.0.0.1:{port} (connection string 'redis', ConnectionStrings__redis)", error.Message);
    }
}
