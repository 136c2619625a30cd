using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Exo.Contracts;

namespace Exo.Hub;

/// <summary>A model folder that another worker serves with <see cref="ModelFileEndpoints.MapModelFiles"/>.</summary>
public sealed class PeerSource : IModelSource
{
    // A listing beyond this is not one; it bounds what is read into memory.
    private const int MaxListingBytes = 16 * 1024 * 1024;

    private readonly Uri _peer;
    private readonly string _modelId;
    private readonly HttpFetch _fetch;

    /// <param name="peer">The worker's HTTP address, as http://host:port.</param>
    /// <param name="modelId">The model's folder name on that worker.</param>
    /// <param name="secret">The cluster's join secret, sent when set.</param>
    public PeerSource(HttpClient http, Uri peer, string modelId, string? secret)
    {
        _peer = peer;
        _modelId = modelId;
        Name = $"peer {peer.GetLeftPart(UriPartial.Authority)} ({modelId})";
        var value = string.IsNullOrWhiteSpace(secret) ? null : secret.Trim();
        _fetch = new HttpFetch(http, Name, peer, request => { if (value is not null) request.Headers.Add(ClusterSecret.Header, value); }, Describe);
    }

    public string Name { get; }

    public async Task<ModelListing> ListAsync(CancellationToken cancellationToken)
    {
        var (response, _) = await _fetch.GetAsync(new Uri(_peer, PeerProtocol.FilesPath(_modelId)), null, "the file list", cancellationToken);
        using (response)
        {
            if (response.Content.Headers.ContentLength is not { } length || length > MaxListingBytes)
                throw new ModelSourceException($"{Name}: the file list must come with a length of at most {MaxListingBytes} bytes");
            PeerFileList? list;
            try
            {
                list = await response.Content.ReadFromJsonAsync<PeerFileList>(PeerProtocol.Json, cancellationToken);
            }
            catch (JsonException e)
            {
                throw new ModelSourceException($"{Name}: the file list is not valid JSON ({e.Message})", inner: e);
            }

            if (list?.Files is null) throw new ModelSourceException($"{Name}: the file list has no files");
            var files = new List<ModelFile>(list.Files.Count);
            foreach (var file in list.Files)
            {
                if (file?.Path is null || ModelPaths.Problem(file.Path) is { } problem)
                    throw new ModelSourceException($"{Name}: lists a file path it may not ('{file?.Path}')");
                if (file.Size < 0 || file.Sha256 is not { Length: 64 } sha || !sha.All(char.IsAsciiHexDigit))
                    throw new ModelSourceException($"{Name}: '{file.Path}' needs a size and a SHA-256");
                files.Add(new ModelFile(file.Path, file.Size, sha.ToLowerInvariant()));
            }

            return new ModelListing(null, files);
        }
    }

    public Task<SourceStream> OpenAsync(ModelFile file, long offset, long? length, CancellationToken cancellationToken) =>
        _fetch.OpenAsync(new Uri(_peer, PeerProtocol.FilePath(_modelId, file.Path)), file, offset, length, cancellationToken);

    private static string Describe(HttpResponseMessage response, string what) => response.StatusCode switch
    {
        HttpStatusCode.Unauthorized => $"401 for {what}: the peer wants the cluster's secret; {ClusterSecret.Fix}",
        HttpStatusCode.NotFound => $"404 for {what}: the peer does not have this model or file",
        _ => $"{(int)response.StatusCode} {response.ReasonPhrase} for {what}",
    };
}
