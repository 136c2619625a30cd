using Exo.Api.Backends;
using Exo.Api.Completions;

namespace Exo.Api.Apis;

/// <summary>GET /api/cluster: the nodes, the placement of each model and the API's load, for the web chat and scripts.</summary>
public static class ClusterApi
{
    public static IEndpointRouteBuilder MapClusterApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/cluster", (IGenerationBackend backend, AdmissionControl admission) =>
        {
            var view = backend.Describe();
            return Results.Json(new
            {
                nodes = view.Nodes,
                placements = view.Placements,
                healthy = view.Placements.Count > 0 && view.Placements.All(p => p.Ready),
                requests = new { inFlight = admission.InFlight, waiting = admission.Waiting },
            });
        });
        return app;
    }
}
