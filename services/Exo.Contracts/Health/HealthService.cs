using System.Collections.Concurrent;
using System.Threading.Channels;
using Exo.Grpc;
using Grpc.Health.V1;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace Exo.Contracts.Health;

/// <summary>
/// The standard health service: per-service serving status (the empty name is the whole server), Check for a
/// snapshot and Watch for changes, as grpc.io's health-checking protocol describes.
/// </summary>
public sealed class HealthService : global::Grpc.Health.V1.Health.HealthBase
{
    private readonly ConcurrentDictionary<string, ServingStatus> _statuses = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Channel<ServingStatus>, string> _watchers = new();

    public HealthService()
    {
        _statuses[""] = ServingStatus.Serving;
    }

    public void SetStatus(string service, ServingStatus status)
    {
        ArgumentNullException.ThrowIfNull(service);
        _statuses[service] = status;
        Notify(service, status);
    }

    public void ClearStatus(string service)
    {
        _statuses.TryRemove(service, out _);
        Notify(service, ServingStatus.ServiceUnknown);
    }

    public override Task<HealthCheckResponse> Check(HealthCheckRequest request, ServerCallContext context) =>
        _statuses.TryGetValue(request.Service, out var status)
            ? Task.FromResult(new HealthCheckResponse { Status = status })
            : throw new RpcException(new Status(StatusCode.NotFound, $"Unknown service '{request.Service}'."));

    public override async Task Watch(HealthCheckRequest request, IServerStreamWriter<HealthCheckResponse> responseStream, ServerCallContext context)
    {
        // Only the latest status matters to a watcher; older ones are dropped if it reads slowly.
        var channel = Channel.CreateBounded<ServingStatus>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
        _watchers[channel] = request.Service;
        try
        {
            channel.Writer.TryWrite(_statuses.GetValueOrDefault(request.Service, ServingStatus.ServiceUnknown));
            var last = (ServingStatus)(-1);
            await foreach (var status in channel.Reader.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
            {
                if (status != last)
                {
                    last = status;
                    await responseStream.WriteAsync(new HealthCheckResponse { Status = status }, context.CancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _watchers.TryRemove(channel, out _);
        }
    }

    private void Notify(string service, ServingStatus status)
    {
        foreach (var (channel, watched) in _watchers)
        {
            if (watched == service)
            {
                channel.Writer.TryWrite(status);
            }
        }
    }
}
