using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Exo.Gateway.Proxy;

/// <summary>
/// Sends a request once more, to another replica, when the one chosen failed before its response started (it is down:
/// connection refused, reset before answering). Runs ahead of load balancing, so the second choice is made among
/// the replicas left; passive health checking has already counted the failure by then. Only a buffered body can be
/// sent twice: a huge one streamed through is not retried.
/// </summary>
internal sealed partial class RetryOnAnotherReplica(ILogger<RetryOnAnotherReplica> logger) : IMiddleware
{
    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var proxy = context.GetReverseProxyFeature();
        var candidates = proxy.AvailableDestinations;
        await next(context);

        if (context.GetForwarderErrorFeature() is not { Error: ForwarderError.Request } failure || context.Response.HasStarted || !context.Request.Body.CanSeek) return;
        var failed = proxy.ProxiedDestination;
        var others = candidates.Where(d => d != failed).ToList();
        if (others.Count == 0) return;

        LogRetry(context.Request.Method, context.Request.Path, failed?.Model.Config.Address, failure.Exception?.Message);
        context.Features.Set<IForwarderErrorFeature>(null);
        context.Response.Clear();
        context.Request.Body.Position = 0;
        proxy.AvailableDestinations = others;
        await next(context);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Retrying {Method} {Path} on another API replica: {Address} failed before answering ({Reason})")]
    private partial void LogRetry(string method, string path, string? address, string? reason);
}
