using System.Globalization;
using Exo.Gateway.Edge;
using Yarp.ReverseProxy.Forwarder;

namespace Exo.Gateway.Proxy;

/// <summary>
/// Answers the proxy's own failures, which YARP leaves with an empty body, with OpenAI's error object: no replica could
/// take the request (503 with Retry-After, the time the health checks take to bring one back), or the replica took
/// too long (504). Runs ahead of the retry, so it sees what is left once another replica has been tried.
/// </summary>
internal sealed class ProxyErrors : IMiddleware
{
    private const int RetryAfterSeconds = 5;

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        await next(context);
        if (context.GetForwarderErrorFeature() is not { } failure || context.Response.HasStarted || context.RequestAborted.IsCancellationRequested) return;

        switch (failure.Error)
        {
            case ForwarderError.NoAvailableDestinations or ForwarderError.Request:
                context.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                await OpenAiError.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
                    $"no API replica could take the request; retry in {RetryAfterSeconds} s", "api_unavailable", "server_error");
                break;
            case ForwarderError.RequestTimedOut:
                await OpenAiError.WriteAsync(context, StatusCodes.Status504GatewayTimeout, "the API replica did not answer in time", "api_timeout", "server_error");
                break;
            default:
                await OpenAiError.WriteAsync(context, context.Response.StatusCode, $"the gateway could not pass the request on ({failure.Error})", "proxy_error",
                    context.Response.StatusCode >= 500 ? "server_error" : "invalid_request_error");
                break;
        }
    }
}
