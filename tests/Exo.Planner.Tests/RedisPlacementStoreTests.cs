using Exo.Contracts.V1;
using Exo.Planner.Store;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Exo.Planner.Tests;

[Collection(RedisCollection.Name)]
public sealed class RedisPlacementStoreTests(RedisServer redis) : PlacementStoreContract, IAsyncLifetime
{
    // Each test gets its own key space on the shared server, and each store its own connection, as a planner process has.
    private readonly RedisKeyspace _keys = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _keys.DisposeAsync();

    protected override async Task<IPlacementStore> CreateStoreAsync() => await Start();

    /// <summary>A started store on a connection of its own: another planner instance.</summary>
    private async Task<RedisPlacementStore> Start()
    {
        var store = new RedisPlacementStore(await _keys.ConnectAsync(redis.Configuration), NullLogger<RedisPlacementStore>.Instance, _keys.Prefix);
        await store.StartAsync(CancellationToken.None);
        return store;
    }

    [Fact]
    public async Task VersionsAndPlacementsOutliveAStoreAndAreSharedBetweenPlanners()
    {
        var first = await Start();
        var second = await Start();
        var versions = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            versions.Add(await first.NextVersionAsync(0, CancellationToken.None));
            versions.Add(await second.NextVersionAsync(0, CancellationToken.None));
        }

        Assert.Equal(versions.Order(), versions);
        Assert.Equal(6, versions.Distinct().Count());
        var ring = Ring("m", (ulong)versions[^1], ("a", 0, 8));
        Assert.True(await first.SaveAsync(ring, CancellationToken.None));
        // The other planner's older placement does not replace it.
        Assert.False(await second.SaveAsync(Ring("m", (ulong)versions[^2], ("b", 0, 8)), CancellationToken.None));
        await _keys.CloseAllAsync();

        var restarted = await Start();
        Assert.True(await restarted.NextVersionAsync(0, CancellationToken.None) > versions[^1]);
        Assert.Equal(ring, Assert.Single(await restarted.LoadAsync(CancellationToken.None)));
    }

    [Fact]
    public async Task KeysFollowTheDocumentedLayout()
    {
        var store = await Start();
        var version = await store.NextVersionAsync(0, CancellationToken.None);
        var ring = Ring("m", (ulong)version, ("a", 0, 3), ("b", 3, 8));
        await store.SaveAsync(ring, CancellationToken.None);

        var db = (await _keys.ConnectAsync(redis.Configuration)).GetDatabase();
        Assert.Equal(version, (long)await db.StringGetAsync(_keys.Prefix + "placements:version"));
        Assert.Equal(ring, Placement.Parser.ParseFrom((byte[]?)await db.HashGetAsync(_keys.Prefix + "placements", "m")));
        Assert.Equal(version, (long)await db.HashGetAsync(_keys.Prefix + "placements:versions", "m"));
    }

    [Fact]
    public async Task DamagedEntriesAreSkippedAndTheRestLoaded()
    {
        var store = await Start();
        var good = Ring("good", 2, ("a", 0, 8));
        await store.SaveAsync(good, CancellationToken.None);

        var db = (await _keys.ConnectAsync(redis.Configuration)).GetDatabase();
        await db.HashSetAsync(_keys.Prefix + "placements", "garbage", new byte[] { 0x0a, 0xff, 0x01 });
        await db.HashSetAsync(_keys.Prefix + "placements", "misfiled", Ring("other", 3, ("a", 0, 8)).ToByteArray());
        await db.HashSetAsync(_keys.Prefix + "placements", "gap", Ring("gap", 3, ("a", 1, 8)).ToByteArray());
        await db.HashSetAsync(_keys.Prefix + "placements", "flat", FlatPlacement("flat", 3));

        Assert.Equal(good, Assert.Single(await store.LoadAsync(CancellationToken.None)));
    }

    /// <summary>A placement as stored before replicas: its stages directly in field 3, where rings now are not.</summary>
    private static byte[] FlatPlacement(string model, ulong version)
    {
        using var bytes = new MemoryStream();
        using (var output = new CodedOutputStream(bytes))
        {
            output.WriteTag(1, WireFormat.WireType.Varint);
            output.WriteUInt64(version);
            output.WriteTag(2, WireFormat.WireType.LengthDelimited);
            output.WriteString(model);
            output.WriteTag(3, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(new Stage { NodeId = "a", GrpcEndpoint = "http://10.0.0.1:50051", LayerStart = 0, LayerEnd = 8 }.ToByteString());
        }

        return bytes.ToArray();
    }

    [Fact]
    public async Task ADamagedCounterIsAClearError()
    {
        var store = await Start();
        await (await _keys.ConnectAsync(redis.Configuration)).GetDatabase().StringSetAsync(_keys.Prefix + "placements:version", "seven");

        var error = await Assert.ThrowsAsync<InvalidDataException>(() => store.NextVersionAsync(0, CancellationToken.None));
        Assert.StartsWith($"Redis key {_keys.Prefix}placements:version does not hold a version counter", error.Message);
    }

    [Fact]
    public async Task NoServerIsAClearErrorNamingTheAddress()
    {
        // As Aspire's client connects: it keeps retrying in the background rather than failing the connect.
        var port = Ports.Free();
        var nowhere = await _keys.ConnectAsync($"127.0.0.1:{port},abortConnect=false,connectTimeout=500");
        var store = new RedisPlacementStore(nowhere, NullLogger<RedisPlacementStore>.Instance, _keys.Prefix);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => store.StartAsync(CancellationToken.None));
        Assert.StartsWith($"cannot reach Redis at 127.0.0.1:{port} (connection string 'redis', ConnectionStrings__redis)", error.Message);
    }
}
