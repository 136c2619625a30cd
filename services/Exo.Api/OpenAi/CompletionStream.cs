using Microsoft.AspNetCore.Http.Features;

namespace Exo.Api.OpenAi;

/// <summary>
/// A completion streamed as server-sent events: each chunk in the request's format, told where its text starts in its
/// choice's whole text (the legacy API's logprob offsets), flushed at once so every token reaches the client as it comes.
/// </summary>
internal sealed class CompletionStream(HttpResponse response, CompletionFormat format, CompletionHeader header, bool includeUsage, int choices)
{
    private readonly SseWriter _events = new(response.Body);
    private readonly int[] _offsets = new int[choices];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        response.StatusCode = 200;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.HttpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.Body.FlushAsync(cancellationToken);
    }

    public Task SendAsync(CompletionChunk chunk, CancellationToken cancellationToken)
    {
        var placed = chunk with { Offset = _offsets[chunk.Index] };
        _offsets[chunk.Index] += chunk.Text?.Length ?? 0;
        return _events.WriteAsync(w => format.WriteChunk(w, header, placed, includeUsage), cancellationToken);
    }

    /// <summary>Once the stream has begun an error travels as an event, as OpenAI sends it, and ends the stream.</summary>
    public async Task FailAsync(OpenAiException error, CancellationToken cancellationToken)
    {
        await _events.WriteAsync(w => OpenAiJson.Error(w, error), cancellationToken);
        await _events.DoneAsync(cancellationToken);
    }

    public Task DoneAsync(CancellationToken cancellationToken) => _events.DoneAsync(cancellationToken);
}
