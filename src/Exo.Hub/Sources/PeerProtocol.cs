using System.Text.Json;

namespace Exo.Hub;

/// <summary>
/// What a worker serves of its models to other workers: <c>GET /v1/models/{modelId}/files</c> lists a model folder's
/// files as <see cref="PeerFileList"/>, <c>GET /v1/models/{modelId}/files/{path}</c> gives one file's bytes (with
/// Range); both want <see cref="Exo.Contracts.ClusterSecret.Header"/> when the cluster has a secret.
/// </summary>
public static class PeerProtocol
{
    public const string Prefix = "/v1/models";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static string FilesPath(string modelId) => $"{Prefix}/{Uri.EscapeDataString(modelId)}/files";

    public static string FilePath(string modelId, string path) =>
        $"{FilesPath(modelId)}/{string.Join('/', path.Split('/').Select(Uri.EscapeDataString))}";
}

/// <summary>A model folder's files as a peer lists them.</summary>
public sealed record PeerFileList(string Model, IReadOnlyList<PeerFile> Files);

/// <summary>One served file: its path inside the model folder ('/'-separated), size and SHA-256 (lower-case hex).</summary>
public sealed record PeerFile(string Path, long Size, string Sha256);
