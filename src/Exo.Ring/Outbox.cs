using System.Threading.Channels;
using Exo.Contracts.V1;
using Grpc.Core;

namespace Exo.Ring;

/// <summary>
/// The response side of one inbound Forward stream. Several threads answer on it (the stage's result loop, other
/// streams' handlers), and a gRPC stream takes one write at a time, so answers queue here.
/// </summary>
public sealed class Outbox
{
    private readonly Channel<ForwardMessage> _messages = Channel.CreateUnbounded<ForwardMessage>(new UnboundedChannelOptions { SingleReader = true });

    public void Post(RingMessage message) => _messages.Writer.TryWrite(RingCodec.Encode(message));

    public void Complete() => _messages.Writer.TryComplete();

    public async Task WriteAllAsync(IServerStreamWriter<ForwardMessage> stream, CancellationToken cancellationToken)
    {
        await foreach (var message in _messages.Reader.ReadAllAsync(cancellationToken)) await stream.WriteAsync(message, cancellationToken);
    }
}
