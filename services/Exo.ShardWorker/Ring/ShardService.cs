using Exo.Contracts.V1;
using Exo.Ring;
using Grpc.Core;
using Exo.ShardWorker.Stages;

namespace Exo.ShardWorker.Ring;

/// <summary><c>exo.v1.Shard</c>: the ring's inbound streams, cancellation and status.</summary>
public sealed class ShardService(StageHosts hosts, NodeId node, IHostApplicationLifetime lifetime) : Shard.ShardBase
{
    public override async Task Forward(IAsyncStreamReader<ForwardMessage> requestStream, IServerStreamWriter<ForwardMessage> responseStream, ServerCallContext context)
    {
        var outbox = new Outbox();
        // A stopping worker ends its streams, as it does its requests: Kestrel would otherwise wait its whole shutdown
        // timeout for the peers to hang up, and the next stage learns of the stop at once instead of at a ping timeout.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        var writer = outbox.WriteAllAsync(responseStream, stop.Token);
        // Which model a message belongs to: its setup names it; later messages are found by their request id.
        StageHost? last = null;
        try
        {
            while (await requestStream.MoveNext(stop.Token))
            {
                var message = requestStream.Current;
                var header = RingCodec.ReadHeader(message);
                var host = header.ModelId is { } model ? hosts.Find(model)
                    : last?.Holds(header.RequestId) == true ? last
                    : hosts.Holding(header.RequestId);
                if (host is null)
                {
                    if (header.Kind != RingPayloadKind.Error) outbox.Post(NotHere(header));
                    continue;
                }

                last = host;
                host.Receive(message, outbox);
            }
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            // This worker stops: the stream ends here, and its requests with it (below).
        }
        finally
        {
            // A gateway that hangs up takes its requests with it.
            foreach (var host in hosts.All) host.Sweep(outbox);
            outbox.Complete();
            await stop.CancelAsync();
            try
            {
                await writer;
            }
            catch (Exception e) when (e is OperationCanceledException or RpcException or IOException)
            {
                // The gateway or stage on the other end is gone; its requests were swept above.
            }
        }
    }

    private static RingMessage NotHere(RingHeader header) => RingMessage.Failure(header.RequestId, RingErrorCode.NotReady,
        header.ModelId is { } model ? $"this node does not serve model '{model}' (yet)" : $"request '{header.RequestId}' is not open on this node");

    public override Task<CancelResponse> Cancel(CancelRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.RequestId)) throw new RpcException(new Status(StatusCode.InvalidArgument, "request_id is empty"));
        // Every model's stage hears it: one that has not seen the request yet must refuse it when it comes.
        var found = false;
        foreach (var host in hosts.All) found |= host.Cancel(request.RequestId);
        return Task.FromResult(new CancelResponse { Found = found });
    }

    public override Task<ShardStatus> Status(ShardStatusRequest request, ServerCallContext context)
    {
        var host = string.IsNullOrEmpty(request.ModelId) ? hosts.All.FirstOrDefault() : hosts.Find(request.ModelId);
        return Task.FromResult(host?.Status() ?? new ShardStatus { NodeId = node.Value, ModelId = request.ModelId });
    }
}
