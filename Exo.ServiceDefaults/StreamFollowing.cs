using Grpc.Core;

namespace Exo.ServiceDefaults;

/// <summary>Keeps a long-lived call (a watch, a placement stream) open for as long as the caller runs.</summary>
public static class StreamFollowing
{
    /// <summary>
    /// Runs <paramref name="follow"/> until <paramref name="stopping"/> is cancelled, calling it again a while after
    /// the call breaks (the server restarted, the network dropped). Stopping ends it quietly, whatever the cancelled call
    /// threw; other failures are the caller's bugs and escape.
    /// </summary>
    public static async Task FollowAsync(Func<CancellationToken, Task> follow, Action<Exception> onBroken, CancellationToken stopping, TimeSpan? retryDelay = null)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await follow(stopping).ConfigureAwait(false);
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is RpcException or HttpRequestException or IOException)
            {
                onBroken(e);
            }

            try
            {
                await Task.Delay(retryDelay ?? TimeSpan.FromSeconds(1), stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
