using System.Threading.Channels;
using Exo.Contracts;
using Exo.Contracts.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Exo.Ring;

/// <summary>
/// One long-lived <c>Shard.Forward</c> stream to a stage, multiplexing every request sent along it: the edge from a
/// stage to the next, or from a gateway to the first stage. Messages are queued and written in order; when the stream
/// breaks it is opened again and the queue carries on. Replies (sampled tokens and errors on the gateway's link, errors
/// on a stage's) go to <paramref name="onReply"/>.
/// </summary>
public sealed class ForwardLink : IAsyncDisposable
{
    private readonly Channel<ForwardMessage> _outbox = Channel.CreateUnbounded<ForwardMessage>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly ClusterSecret _secret;
    private readonly Action<ForwardMessage> _onReply;
    private readonly Action<Exception> _onBroken;
    private readonly Task _loop;

    /// <param name="endpoint">The stage's gRPC address.</param>
    /// <param name="secret">The cluster's join secret, which the stage requires of the stream.</param>
    /// <param name="onReply">Called for each message the stage sends back, on the link's reader.</param>
    /// <param name="onBroken">Called when the stream fails (before it is opened again), for logging.</param>
    public ForwardLink(string endpoint, ClusterSecret secret, Action<ForwardMessage> onReply, Action<Exception> onBroken)
    {
        Endpoint = endpoint;
        _secret = secret;
        _onReply = onReply;
        _onBroken = onBroken;
        _loop = Task.Run(RunAsync);
    }

    public string Endpoint { get; }

    public void Post(RingMessage message) => _outbox.Writer.TryWrite(RingCodec.Encode(message));

    private async Task RunAsync()
    {
        var stopping = _stopping.Token;
        using var channel = GrpcChannel.ForAddress(Endpoint);
        var client = new Shard.ShardClient(_secret.Attach(channel));
        while (!stopping.IsCancellationRequested)
        {
            using var broken = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            Task? replies = null;
            try
            {
                using var call = client.Forward(new CallOptions(cancellationToken: broken.Token));
                replies = ReadRepliesAsync(call.ResponseStream, broken);
                while (await _outbox.Reader.WaitToReadAsync(broken.Token))
                {
                    while (_outbox.Reader.TryPeek(out var message))
                    {
                        await call.RequestStream.WriteAsync(message, broken.Token);
                        _outbox.Reader.TryRead(out _);
                    }
                }
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                // Disposing never throws, whatever the write in progress made of the cancellation.
            }
            catch (Exception e)
            {
                _onBroken(e);
            }
            finally
            {
                // The reader uses `broken`; it must be done before `broken` is disposed.
                await broken.CancelAsync();
                if (replies is not null) await replies;
            }

            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500), stopping);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Hands replies on; the end of the reply stream means the stage went away, so the writer stops too.</summary>
    private async Task ReadRepliesAsync(IAsyncStreamReader<ForwardMessage> replies, CancellationTokenSource broken)
    {
        try
        {
            while (await replies.MoveNext(broken.Token)) _onReply(replies.Current);
        }
        catch (Exception)
        {
            // However the reply stream ended, the stream is finished: the writer learns it through `broken`.
        }
        finally
        {
            if (!broken.IsCancellationRequested) await broken.CancelAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _outbox.Writer.TryComplete();
        await _stopping.CancelAsync();
        await _loop;
        _stopping.Dispose();
    }
}
