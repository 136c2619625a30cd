using Exo.Contracts.V1;
using Exo.Planner.Grpc;
using Exo.Planner.Store;
using Microsoft.Extensions.Logging.Abstractions;

namespace Exo.Planner.Tests;

public sealed class PlacementBoardTests
{
    private static Placement Ring(string model, ulong version, string node) => new()
    {
        Version = version,
        ModelId = model,
        Rings = { new Ring { Version = version, Stages = { new Stage { NodeId = node, GrpcEndpoint = "http://127.0.0.1:1", LayerStart = 0, LayerEnd = 8 } } } },
    };

    [Fact]
    public async Task AWatcherThatFallsBehindStillGetsEveryModelsLatestPlacement()
    {
        var board = new PlacementBoard(new InMemoryPlacementStore(), TimeProvider.System, NullLogger<PlacementBoard>.Instance);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var watch = board.WatchAsync(null, stop.Token).GetAsyncEnumerator(stop.Token);
        var first = watch.MoveNextAsync();

        // Forty models change twice each while the watcher reads nothing.
        ulong version = 0;
        for (var round = 0; round < 2; round++)
        {
            for (var m = 0; m < 40; m++) await board.PublishAsync(Ring($"model-{m}", ++version, $"node-{round}"), stop.Token);
        }

        var seen = new Dictionary<string, Placement>();
        Assert.True(await first);
        seen[watch.Current.ModelId] = watch.Current;
        while (seen.Count < 40 || seen.Values.Any(p => p.Rings[0].Stages[0].NodeId != "node-1"))
        {
            Assert.True(await watch.MoveNextAsync());
            seen[watch.Current.ModelId] = watch.Current;
        }

        Assert.Equal(40, seen.Count);
        Assert.All(seen.Values, p => Assert.Equal("node-1", p.Rings[0].Stages[0].NodeId));
    }

    [Fact]
    public async Task VersionsStayAboveThoseHandedOutWhenTheStoreForgetsItsCounterOrTheClockGoesBack()
    {
        var clock = new ManualTimeProvider();
        var board = new PlacementBoard(new InMemoryPlacementStore(), clock, NullLogger<PlacementBoard>.Instance);
        var first = await board.NextVersionAsync(CancellationToken.None);
        Assert.Equal(clock.GetUtcNow().ToUnixTimeMilliseconds(), first);
        await board.PublishAsync(Ring("m", (ulong)first, "a"), CancellationToken.None);

        // A planner that restarted on a store that lost everything (Redis restarted empty) a second later.
        clock.Advance(TimeSpan.FromSeconds(1));
        var restarted = new PlacementBoard(new InMemoryPlacementStore(), clock, NullLogger<PlacementBoard>.Instance);
        var afterRestart = await restarted.NextVersionAsync(CancellationToken.None);
        Assert.True(afterRestart > first, $"{afterRestart} after a restart on an empty store does not follow {first}");

        // A clock behind the versions (set back, say): a planner goes on above the placements it published.
        var setBack = new PlacementBoard(new InMemoryPlacementStore(), new ManualTimeProvider(), NullLogger<PlacementBoard>.Instance);
        await setBack.PublishAsync(Ring("m", (ulong)afterRestart, "a"), CancellationToken.None);
        Assert.Equal(afterRestart + 1, await setBack.NextVersionAsync(CancellationToken.None));
    }
}
