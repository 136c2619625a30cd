using System.Net;
using System.Text.Json;
using Exo.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace Exo.Hub;

/// <summary>The server side of <see cref="PeerSource"/>: a worker lends the model folders it has to other workers.</summary>
public static partial class ModelFileEndpoints
{
    /// <summary>
    /// Maps <c>GET /v1/models/{modelId}/files</c> (the model folder's files with size and SHA-256) and
    /// <c>GET /v1/models/{modelId}/files/{path}</c> (one file's bytes, Range supported), both refused with 401 without
    /// the cluster's secret when it has one, and to callers on other machines when it has none.
    /// </summary>
    public static IEndpointRouteBuilder MapModelFiles(this IEndpointRouteBuilder endpoints, ModelFileOptions options)
    {
        var store = new ModelFileStore(options);
        var logger = endpoints.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ModelFileEndpoints));
        var group = endpoints.MapGroup(PeerProtocol.Prefix).AddEndpointFilter(async (context, next) =>
        {
            var request = context.HttpContext.Request;
            var remote = context.HttpContext.Connection.RemoteIpAddress;
            // A cluster without a secret (services started by hand on one machine) lends its files to that machine only.
            var refusal = options.Secret.IsSet ? options.Secret.Refusal(request.Headers[ClusterSecret.Header].FirstOrDefault())
                : remote is null || IPAddress.IsLoopback(remote) ? null
                : $"this worker lends its models only to nodes with the cluster's join secret, and this cluster has none: {ClusterSecret.Fix}";
            if (refusal is null) return await next(context);
            LogRefused(logger, request.Path, remote?.ToString());
            return Results.Json(new ErrorBody(refusal), statusCode: StatusCodes.Status401Unauthorized);
        });

        group.MapGet("/{modelId}/files", async (string modelId, CancellationToken cancellationToken) =>
        {
            if (store.List(modelId) is not { } entries) return NoModel(modelId);
            var files = new List<PeerFile>(entries.Count);
            foreach (var entry in entries) files.Add(new PeerFile(entry.Path, new FileInfo(entry.RealPath).Length, await store.Sha256Async(entry, cancellationToken)));
            // Serialized whole so that the answer has a length, which the reading side bounds.
            return Results.Bytes(JsonSerializer.SerializeToUtf8Bytes(new PeerFileList(modelId, files), PeerProtocol.Json), "application/json");
        });

        group.MapGet("/{modelId}/files/{**path}", async (string modelId, string path, CancellationToken cancellationToken) =>
        {
            if (store.Find(modelId, path) is not { } entry)
            {
                return ModelPaths.Problem(path) is { } problem
                    ? Results.Json(new ErrorBody($"'{path}': {problem}"), statusCode: StatusCodes.Status400BadRequest)
                    : Results.Json(new ErrorBody($"model '{modelId}' has no file '{path}' that this worker serves"), statusCode: StatusCodes.Status404NotFound);
            }

            var sha256 = await store.Sha256Async(entry, cancellationToken);
            return Results.File(entry.RealPath, "application/octet-stream", enableRangeProcessing: true, entityTag: new EntityTagHeaderValue($"\"{sha256}\""));
        });
        return endpoints;
    }

    private static IResult NoModel(string modelId) =>
        Results.Json(new ErrorBody($"this worker has no model '{modelId}'"), statusCode: StatusCodes.Status404NotFound);

    private sealed record ErrorBody(string Error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused {Path} from {Remote}: no or a wrong cluster secret")]
    private static partial void LogRefused(ILogger logger, PathString path, string? remote);
}
