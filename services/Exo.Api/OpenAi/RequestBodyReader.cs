using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Exo.Api.Models;
using Microsoft.Extensions.Options;

namespace Exo.Api.OpenAi;

/// <summary>
/// Reads a request's body as a JSON object of valid UTF-8 text, at most <see cref="ApiOptions.MaxRequestBodyBytes"/> of
/// it, and no more than the longest prompt any served model can take could need: a longer one is refused with OpenAI's
/// 413 at once when its Content-Length says so, or as soon as a chunked body passes the limit (Kestrel stops reading
/// there), so no request holds more than the limit in memory.
/// </summary>
internal sealed class RequestBodyReader(IOptions<ApiOptions> options, ModelCatalog catalog)
{
    // Six bytes of JSON per character at most (an escape such as \u00e9), and room for the rest of a request.
    private readonly long _limit = Math.Min(options.Value.MaxRequestBodyBytes, catalog.Models.Max(m => m.LongestPrompt) * 6 + (1 << 20));

    public async Task<JsonElement> ReadAsync(HttpContext http, CancellationToken cancellationToken)
    {
        var request = http.Request;
        if (request.ContentLength > _limit) throw TooLarge();
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = _limit;

        using var buffer = new MemoryStream(request.ContentLength is { } length ? (int)length : 16 * 1024);
        try
        {
            await request.Body.CopyToAsync(buffer, cancellationToken);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw TooLarge();
        }

        var json = buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw OpenAiException.BadRequest("the request body must be a JSON object");
            JsonText.RequireValid(json.Span);
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw OpenAiException.BadRequest($"We could not parse the JSON body of your request: {e.Message}", null, "invalid_json");
        }
    }

    private OpenAiException TooLarge() => new(413,
        $"the request body is larger than this API's limit of {_limit} bytes: Api:MaxRequestBodyBytes, or what the longest prompt the models served here can take could need",
        null, "request_too_large");
}
