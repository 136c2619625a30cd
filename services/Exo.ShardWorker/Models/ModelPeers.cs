using System.Net;
using Exo.Contracts;
using Exo.Contracts.V1;
using Exo.Hub;
using Exo.ShardWorker.Stages;

namespace Exo.ShardWorker.Models;

/// <summary>
/// The nodes a model's files can be copied from: those the registry lists with the model in their models directory.
/// Each serves its models directory on its gRPC endpoint (HTTP/2 only, so the requests speak HTTP/2 from the start).
/// </summary>
public sealed class ModelPeers(Contracts.V1.Registry.RegistryClient registry, NodeId self, IConfiguration configuration) : IDisposable
{
    private readonly HttpClient _http = new(new Http2Only(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10) }))
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    /// <summary>A source for each other node that has <paramref name="modelId"/>, in random order so that fetches spread over them.</summary>
    public async Task<IReadOnlyList<IModelSource>> SourcesAsync(string modelId, CancellationToken cancellationToken)
    {
        var nodes = await registry.ListAsync(new ListNodesRequest(), cancellationToken: cancellationToken);
        var secret = configuration[ClusterSecret.Setting];
        var holders = nodes.Nodes
            .Where(n => n.NodeId != self.Value && n.ModelsOnDisk.Contains(modelId, StringComparer.Ordinal)
                        && Uri.TryCreate(n.GrpcEndpoint, UriKind.Absolute, out _))
            .ToArray();
        Random.Shared.Shuffle(holders);
        return [.. holders.Select(n => new PeerSource(_http, new Uri(n.GrpcEndpoint), modelId, secret))];
    }

    public void Dispose() => _http.Dispose();

    /// <summary>Sends every request as HTTP/2 without an upgrade: a worker's gRPC endpoint speaks nothing else.</summary>
    private sealed class Http2Only(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Version = HttpVersion.Version20;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
            return base.SendAsync(request, cancellationToken);
        }
    }
}
