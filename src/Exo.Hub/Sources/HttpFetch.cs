using System.Net;
using System.Net.Http.Headers;

namespace Exo.Hub;

/// <summary>
/// The HTTP both sources speak: GET with an optional Range, redirects followed by hand so that credentials go only to
/// the origin they were meant for (the hub sends LFS files from a CDN on another host), and every status, length and
/// Content-Range checked against what was asked.
/// </summary>
internal sealed class HttpFetch(HttpClient http, string sourceName, Uri origin, Action<HttpRequestMessage> addCredentials, Func<HttpResponseMessage, string, string> describeFailure)
{
    private const int MaxRedirects = 10;

    /// <summary>A successful response (headers read) and the ETag of the first, not redirected, answer.</summary>
    public async Task<(HttpResponseMessage Response, string? Tag)> GetAsync(Uri uri, RangeHeaderValue? range, string what, CancellationToken cancellationToken)
    {
        var current = uri;
        string? tag = null;
        for (var hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, current);
            request.Headers.Range = range;
            if (SameOrigin(current, origin)) addCredentials(request);
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            }
            catch (HttpRequestException e)
            {
                throw new ModelSourceException($"{sourceName}: cannot reach {current.GetLeftPart(UriPartial.Authority)} ({e.Message})", transient: true, e);
            }
            catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new ModelSourceException($"{sourceName}: timed out waiting for {current.GetLeftPart(UriPartial.Authority)} to answer for {what}", transient: true, e);
            }

            // The hub names an LFS file's SHA-256 (X-Linked-Etag) or a git file's blob id (ETag) on its own answer, before any CDN.
            if (hop == 0) tag = Tag(response);
            if ((int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } location)
            {
                response.Dispose();
                if (hop == MaxRedirects) throw new ModelSourceException($"{sourceName}: more than {MaxRedirects} redirects for {what}");
                current = new Uri(current, location);
                if (current.Scheme is not ("http" or "https"))
                    throw new ModelSourceException($"{sourceName}: {what} redirects to {current.Scheme}:, which is not HTTP");
                continue;
            }

            if (response.IsSuccessStatusCode) return (response, tag);
            using (response)
            {
                var transient = response.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout || (int)response.StatusCode >= 500;
                throw new ModelSourceException($"{sourceName}: {describeFailure(response, what)}", transient);
            }
        }
    }

    /// <summary>
    /// Bytes [offset, offset + length) of <paramref name="file"/> at <paramref name="uri"/>; a server that ignores the
    /// Range gets its leading bytes skipped, and one that announces a length other than the listing's is refused.
    /// </summary>
    public async Task<SourceStream> OpenAsync(Uri uri, ModelFile file, long offset, long? length, CancellationToken cancellationToken)
    {
        var count = length ?? file.Size - offset;
        if (offset < 0 || count < 0 || offset + count > file.Size)
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes [{offset}, {offset + count}) are outside {file.Path} ({file.Size} bytes)");
        var ranged = offset > 0 || count < file.Size;
        var (response, tag) = await GetAsync(uri, ranged ? new RangeHeaderValue(offset, offset + count - 1) : null, file.Path, cancellationToken);
        try
        {
            var expectedTag = file.Sha256 ?? file.ETag;
            if (tag is not null && expectedTag is not null && !string.Equals(tag, expectedTag, StringComparison.OrdinalIgnoreCase))
                throw new ModelSourceException($"{sourceName}: {file.Path} is now {tag}, not the {expectedTag} it was listed as (the file changed while downloading)");

            var announced = response.Content.Headers.ContentLength;
            long skip = 0;
            if (response.StatusCode == HttpStatusCode.PartialContent)
            {
                var range = response.Content.Headers.ContentRange;
                if (range is null || range.From != offset || range.To != offset + count - 1 || (range.Length is { } total && total != file.Size))
                    throw new ModelSourceException($"{sourceName}: asked for bytes {offset}-{offset + count - 1} of {file.Path} ({file.Size} bytes) but got '{range}'");
            }
            else
            {
                // A plain 200 is the whole file: the listing's size, from which the part asked for is cut.
                if (announced is { } whole && whole != file.Size)
                    throw new ModelSourceException($"{sourceName}: sends {whole} bytes for {file.Path} but listed {file.Size}");
                skip = offset;
                announced = announced is null ? null : announced - skip;
            }

            if (announced is { } n && n < count)
                throw new ModelSourceException($"{sourceName}: sends {n} bytes of {file.Path} where {count} were asked for (its listing says {file.Size} bytes)");
            var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            if (skip > 0) await Skip(body, skip, cancellationToken);
            return new SourceStream(body, count, response);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    private static async Task Skip(Stream body, long count, CancellationToken cancellationToken)
    {
        var buffer = new byte[81920];
        while (count > 0)
        {
            var n = await body.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), cancellationToken);
            if (n == 0) throw new ModelSourceException("the connection closed before the requested range", transient: true);
            count -= n;
        }
    }

    private static bool SameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase) && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    private static string? Tag(HttpResponseMessage response)
    {
        var value = response.Headers.TryGetValues("X-Linked-Etag", out var linked) ? linked.FirstOrDefault() : response.Headers.ETag?.Tag;
        if (value is null) return null;
        if (value.StartsWith("W/", StringComparison.Ordinal)) value = value[2..];
        return value.Trim('"');
    }
}
