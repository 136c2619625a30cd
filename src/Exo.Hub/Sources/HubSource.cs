using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Exo.Hub;

/// <summary>
/// A model repository on the Hugging Face Hub at one revision: the model info API
/// (<c>/api/models/{repo}/revision/{revision}?blobs=true</c>) gives the commit and the files, and
/// <c>/{repo}/resolve/{commit}/{file}</c> their bytes, pinned to that commit so that every file comes from the same one.
/// </summary>
public sealed partial class HubSource(HttpClient http, HubOptions options, ModelReference model) : IModelSource
{
    // A model info answer beyond this is not one; it bounds what is read into memory.
    private const int MaxListingBytes = 64 * 1024 * 1024;
    private const int MaxFiles = 100_000;

    private readonly HttpFetch _fetch = new(http, $"hub {options.Endpoint.GetLeftPart(UriPartial.Authority)} ({model})", options.Endpoint,
        request => { if (options.Token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.Token); },
        (response, what) => Describe(response, what, options, model));

    private Task<ModelListing>? _listing;

    public string Name => $"hub {options.Endpoint.GetLeftPart(UriPartial.Authority)} ({model})";

    public ModelReference Model => model;

    /// <summary>Lists once: the revision is resolved to a commit the first time, and every file is then read at that commit.</summary>
    public Task<ModelListing> ListAsync(CancellationToken cancellationToken)
    {
        var listing = _listing;
        if (listing is null || listing.IsFaulted || listing.IsCanceled)
        {
            listing = FetchListingAsync(cancellationToken);
            _listing = listing;
        }

        return listing;
    }

    public async Task<SourceStream> OpenAsync(ModelFile file, long offset, long? length, CancellationToken cancellationToken)
    {
        var commit = (await ListAsync(cancellationToken)).Commit!;
        var path = string.Join('/', file.Path.Split('/').Select(Uri.EscapeDataString));
        return await _fetch.OpenAsync(Url($"{Repo()}/resolve/{commit}/{path}"), file, offset, length, cancellationToken);
    }

    private async Task<ModelListing> FetchListingAsync(CancellationToken cancellationToken)
    {
        var uri = Url($"api/models/{Repo()}/revision/{Uri.EscapeDataString(model.Revision)}?blobs=true");
        var (response, _) = await _fetch.GetAsync(uri, null, "the model info", cancellationToken);
        using (response)
        {
            if (response.Content.Headers.ContentLength > MaxListingBytes)
                throw new ModelSourceException($"{Name}: the model info is {response.Content.Headers.ContentLength} bytes, more than {MaxListingBytes}");
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            using var bounded = new MemoryStream();
            var buffer = new byte[81920];
            int n;
            while ((n = await body.ReadAsync(buffer, cancellationToken)) > 0)
            {
                if (bounded.Length + n > MaxListingBytes) throw new ModelSourceException($"{Name}: the model info is more than {MaxListingBytes} bytes");
                bounded.Write(buffer, 0, n);
            }

            try
            {
                using var document = JsonDocument.Parse(bounded.GetBuffer().AsMemory(0, (int)bounded.Length));
                return Parse(document.RootElement);
            }
            catch (JsonException e)
            {
                throw new ModelSourceException($"{Name}: the model info is not JSON ({e.Message})", inner: e);
            }
        }
    }

    private ModelListing Parse(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("sha", out var sha) || sha.ValueKind != JsonValueKind.String || !Hex40().IsMatch(sha.GetString()!))
            throw new ModelSourceException($"{Name}: the model info has no commit ('sha')");
        if (!root.TryGetProperty("siblings", out var siblings) || siblings.ValueKind != JsonValueKind.Array)
            throw new ModelSourceException($"{Name}: the model info has no file list ('siblings')");
        if (siblings.GetArrayLength() > MaxFiles) throw new ModelSourceException($"{Name}: the model lists more than {MaxFiles} files");

        var files = new List<ModelFile>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var sibling in siblings.EnumerateArray())
        {
            if (sibling.ValueKind != JsonValueKind.Object || !sibling.TryGetProperty("rfilename", out var nameElement) || nameElement.ValueKind != JsonValueKind.String)
                throw new ModelSourceException($"{Name}: a file in the model info has no 'rfilename'");
            var path = nameElement.GetString()!;
            // .gitattributes and the like: repository plumbing, not part of the model.
            if (ModelPaths.IsHidden(path)) continue;
            if (ModelPaths.Problem(path) is { } problem) throw new ModelSourceException($"{Name}: refuses to write the listed file '{path}': {problem}");
            if (!seen.Add(path)) throw new ModelSourceException($"{Name}: lists '{path}' twice");
            if (!sibling.TryGetProperty("size", out var sizeElement) || !sizeElement.TryGetInt64(out var size) || size < 0)
                throw new ModelSourceException($"{Name}: '{path}' has no size in the model info (the hub gives sizes with ?blobs=true)");

            string? sha256 = null;
            if (sibling.TryGetProperty("lfs", out var lfs) && lfs.ValueKind == JsonValueKind.Object)
            {
                if (!lfs.TryGetProperty("sha256", out var hash) || hash.ValueKind != JsonValueKind.String || !Hex64().IsMatch(hash.GetString()!))
                    throw new ModelSourceException($"{Name}: '{path}' is an LFS file without a SHA-256");
                sha256 = hash.GetString()!.ToLowerInvariant();
            }

            var blob = sibling.TryGetProperty("blobId", out var blobElement) && blobElement.ValueKind == JsonValueKind.String && Hex40().IsMatch(blobElement.GetString()!)
                ? blobElement.GetString()!.ToLowerInvariant() : null;
            files.Add(new ModelFile(path, size, sha256, sha256 is null ? blob : null));
        }

        return new ModelListing(sha.GetString()!.ToLowerInvariant(), files);
    }

    private string Repo() => $"{Uri.EscapeDataString(model.Organization)}/{Uri.EscapeDataString(model.Name)}";

    private Uri Url(string relative) => new($"{options.Endpoint.AbsoluteUri.TrimEnd('/')}/{relative}");

    private static string Describe(HttpResponseMessage response, string what, HubOptions options, ModelReference model)
    {
        var page = $"{options.Endpoint.AbsoluteUri.TrimEnd('/')}/{model.RepoId}";
        var code = response.Headers.TryGetValues("X-Error-Code", out var codes) ? codes.FirstOrDefault() : null;
        return response.StatusCode switch
        {
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden when options.Token is null =>
                $"{(int)response.StatusCode} for {what}: {model.RepoId} is gated or private; set HF_TOKEN to a Hugging Face access token (https://huggingface.co/settings/tokens) and accept the model's license on {page}",
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden =>
                $"{(int)response.StatusCode} for {what}: HF_TOKEN does not give access to {model.RepoId}; check the token and accept the model's license on {page}",
            HttpStatusCode.NotFound when code == "RevisionNotFound" => $"404: {model.RepoId} has no revision '{model.Revision}'; check the branch, tag or commit on {page}",
            HttpStatusCode.NotFound when code == "EntryNotFound" => $"404: {model.RepoId} has no file {what} at revision '{model.Revision}'",
            HttpStatusCode.NotFound =>
                $"404 for {what}: repository {model.RepoId} or its revision '{model.Revision}' does not exist (or is private: then set HF_TOKEN); check the name on {options.Endpoint}",
            _ => $"{(int)response.StatusCode} {response.ReasonPhrase} for {what}",
        };
    }

    [GeneratedRegex("^[0-9a-fA-F]{40}$")]
    private static partial Regex Hex40();

    [GeneratedRegex("^[0-9a-fA-F]{64}$")]
    private static partial Regex Hex64();
}
