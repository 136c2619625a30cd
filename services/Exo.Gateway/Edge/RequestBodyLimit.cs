using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Exo.Gateway.Edge;

/// <summary>
/// Refuses a body over <see cref="GatewayOptions.MaxRequestBodyBytes"/> with 413: at once when its Content-Length says
/// so, or as soon as a chunked body passes the limit (Kestrel stops reading there). A body within the limit is held in
/// memory, so that a request whose replica fails before answering can be sent again to another; except one whose
/// declared length is over <see cref="HeldBytes"/>, which streams through (and is not retried), so that a few huge
/// bodies at once cannot multiply the gateway's memory.
/// </summary>
internal sealed class RequestBodyLimit(IOptions<GatewayOptions> options) : IMiddleware
{
    public const long HeldBytes = 1 << 20;

    private readonly long _limit = options.Value.MaxRequestBodyBytes;

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        if (request.ContentLength > _limit)
        {
            await TooLarge(context);
            return;
        }

        if (context.Features.Get<IHttpRequestBodyDetectionFeature>() is { CanHaveBody: false })
        {
            await next(context);
            return;
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = _limit;
        if (request.ContentLength > HeldBytes)
        {
            await next(context);
            return;
        }

        var body = new MemoryStream(request.ContentLength is { } length ? (int)length : 4096);
        try
        {
            await request.Body.CopyToAsync(body, context.RequestAborted);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await TooLarge(context);
            return;
        }

        body.Position = 0;
        request.Body = body;
        request.ContentLength = body.Length;
        request.Headers.TransferEncoding = default;
        await next(context);
    }

    private Task TooLarge(HttpContext context) => OpenAiError.WriteAsync(context, StatusCodes.Status413PayloadTooLarge,
        $"the request body is larger than this gateway's limit of {_limit} bytes", "request_too_large");
}
