using Exo.Contracts.V1;
using Grpc.Core;

namespace Exo.Planner.Grpc;

/// <summary><c>exo.v1.Planner</c>: the current placement of a model, and a stream of new ones.</summary>
public sealed class PlannerService(PlacementBoard board, IHostApplicationLifetime lifetime) : Contracts.V1.Planner.PlannerBase
{
    public override Task<Contracts.V1.Placement> GetPlacement(GetPlacementRequest request, ServerCallContext context)
    {
        var placement = board.Current(request.ModelId);
        if (placement is { Rings.Count: > 0 }) return Task.FromResult(placement);
        throw new RpcException(placement is null
            ? new Status(StatusCode.NotFound, $"model '{request.ModelId}' is not planned here")
            : new Status(StatusCode.FailedPrecondition, placement.Problem));
    }

    public override async Task WatchPlacements(WatchPlacementsRequest request, IServerStreamWriter<Contracts.V1.Placement> responseStream, ServerCallContext context)
    {
        var model = string.IsNullOrEmpty(request.ModelId) ? null : request.ModelId;
        // A watch lasts until the caller leaves or the planner stops: Kestrel's graceful stop waits for open calls.
        using var watching = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        // Headers at once: a watcher knows it is connected before the first placement exists.
        await context.WriteResponseHeadersAsync([]);
        try
        {
            await foreach (var placement in board.WatchAsync(model, watching.Token))
                await responseStream.WriteAsync(placement, watching.Token);
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, "the planner is stopping; watch again"));
        }
    }
}
