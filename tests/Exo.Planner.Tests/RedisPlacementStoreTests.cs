using Exo.Contracts.V1;
using Exo.Planner.Store;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Exo.Planner.Tests;

[Collection(RedisCollection.Name)]
public sealed class RedisPlacementStoreTests(RedisServer redis) : PlacementStoreContract
{
    // Each test gets its own key space on the shared server.
    private readonly string _prefix = $"test-{Guid.NewGuid():N}:";

    protected override async Task<IPlacementStore> CreateStoreAsync() => await Connect();

    private Task<RedisPlacementStore> Connect() =>
        RedisPlacementStore.ConnectAsync(redis.Configuration, NullLogger<RedisPlacementStore>.Instance, _prefix);

    [Fact]
    public async Task VersionsAndPlacementsOutliveAStoreAndAreSharedBetweenPlanners()
    {
        var ring = Ring("m", 0, ("a", 0, 8));
        long last;
        await using (var first = await Connect())
        await using (var second = await Connect())
        {
            var versions = new List<long>();
            for (var i = 0; i < 3; i++)
            {
                versions.Add(await first.NextVersionAsync(CancellationToken.None));
                versions.Add(await second.NextVersionAsync(CancellationToken.None));
            }

            Assert.Equal(versions.Order(), versions);
            Assert.Equal(6, versions.Distinct().Count());
            ring.Version = (ulong)versions[^1];
            Assert.True(await first.SaveAsync(ring, CancellationToken.None));
            // The other planner's older placement does not replace it.
            Assert.False(await second.SaveAsync(Ring("m", (ulong)versions[^2], ("b", 0, 8)), CancellationToken.None));
            last = versions[^1];
        }

        await using var restarted = await Connect();
        Assert.True(await restarted.NextVersionAsync(CancellationToken.None) > last);
        Assert.Equal(ring, Assert.Single(await restarted.LoadAsync(CancellationToken.None)));
    }

    [Fact]
    public async Task KeysFollowTheDocumentedLayout()
    {
        await using var store = await Connect();
        var version = await store.NextVersionAsync(CancellationToken.None);
        var ring = Ring("m", (ulong)version, ("a", 0, 3), ("b", 3, 8));
        await store.SaveAsync(ring, CancellationToken.None);

        using var raw = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        var db = raw.GetDatabase();
        Assert.Equal(version, (long)await db.StringGetAsync(_prefix + "placements:version"));
        Assert.Equal(ring, Placement.Parser.ParseFrom((byte[]?)await db.HashGetAsync(_prefix + "placements", "m")));
        Assert.Equal(version, (long)await db.HashGetAsync(_prefix + "placements:versions", "m"));
    }

    [Fact]
    public async Task DamagedEntriesAreSkippedAndTheRestLoaded()
    {
        await using var store = await Connect();
        var good = Ring("good", 2, ("a", 0, 8));
        await store.SaveAsync(good, CancellationToken.None);

        using var raw = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        var db = raw.GetDatabase();
        await db.HashSetAsync(_prefix + "placements", "garbage", new byte[] { 0x0a, 0xff, 0x01 });
        await db.HashSetAsync(_prefix + "placements", "misfiled", Ring("other", 3, ("a", 0, 8)).ToByteArray());
        await db.HashSetAsync(_prefix + "placements", "gap", Ring("gap", 3, ("a", 1, 8)).ToByteArray());

        Assert.Equal(good, Assert.Single(await store.LoadAsync(CancellationToken.None)));
    }

    [Fact]
    public async Task ADamagedCounterIsAClearError()
    {
        await using var store = await Connect();
        using var raw = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        await raw.GetDatabase().StringSetAsync(_prefix + "placements:version", "seven");

        var error = await Assert.ThrowsAsync<InvalidDataException>(() => store.NextVersionAsync(CancellationToken.None));
        Assert.StartsWith($"Redis key {_prefix}placements:version does not hold a version counter", error.Message);
    }

    [Fact]
    public async Task NoServerIsAClearError()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => RedisPlacementStore.ConnectAsync(
            "127.0.0.1:1,connectTimeout=500", NullLogger<RedisPlacementStore>.Instance));
        Assert.StartsWith("cannot connect to Redis at '127.0.0.1:1,connectTimeout=500'", error.Message);
    }
}
