namespace Exo.Grpc.Tests;

public sealed class StreamFollowingTests
{
    [Fact]
    public async Task ABrokenCallIsOpenedAgainAndStoppingEndsItQuietly()
    {
        using var stop = new CancellationTokenSource();
        var calls = 0;
        var broken = new List<Exception>();
        var follow = StreamFollowing.FollowAsync(async stopping =>
        {
            if (++calls <= 2) throw new RpcException(new Status(StatusCode.Unavailable, "server restarting"));
            await stop.CancelAsync();
            // What a cancelled call throws: not an OperationCanceledException, and still no error for the caller.
            throw new RpcException(new Status(StatusCode.Cancelled, "call cancelled"));
        }, broken.Add, stop.Token, TimeSpan.FromMilliseconds(10));

        await follow.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(3, calls);
        Assert.Equal(2, broken.Count);
        Assert.All(broken, e => Assert.Equal(StatusCode.Unavailable, ((RpcException)e).StatusCode));
    }

    [Fact]
    public async Task ABugInTheFollowerIsNotSwallowed()
    {
        var follow = StreamFollowing.FollowAsync(_ => throw new InvalidOperationException("bug"), _ => { }, CancellationToken.None);
        Assert.Equal("bug", (await Assert.ThrowsAsync<InvalidOperationException>(() => follow)).Message);
    }
}
