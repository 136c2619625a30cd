using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace Exo.Gateway.Edge;

/// <summary>
/// The per-client request limit at the edge (ASP.NET Core's rate limiter, a fixed window): a client is its API key
/// when it presents a configured one, otherwise its address. Over the limit: 429 with Retry-After.
/// </summary>
internal static class RateLimits
{
    public const string Policy = "edge";

    public static IServiceCollection AddEdgeRateLimits(this IServiceCollection services)
    {
        services.AddRateLimiter(limiter =>
        {
            limiter.AddPolicy(Policy, context =>
            {
                var options = context.RequestServices.GetRequiredService<IOptions<GatewayOptions>>().Value;
                if (options.RateLimitRequests == 0) return RateLimitPartition.GetNoLimiter("unlimited");
                var client = context.RequestServices.GetRequiredService<ApiKeys>().Match(context.Request) is { } key
                    ? "key:" + key
                    : "address:" + context.Connection.RemoteIpAddress;
                return RateLimitPartition.GetFixedWindowLimiter(client, _ => new FixedWindowRateLimiterOptions
                {
                    PermitLimit = options.RateLimitRequests,
                    Window = TimeSpan.FromSeconds(options.RateLimitWindowSeconds),
                    QueueLimit = 0,
                });
            });
            limiter.OnRejected = (rejected, cancellationToken) =>
            {
                var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
                var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
                rejected.HttpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                return new ValueTask(OpenAiError.WriteAsync(rejected.HttpContext, StatusCodes.Status429TooManyRequests,
                    $"Rate limit reached for this client; retry in {seconds} s",
                    "rate_limit_exceeded", "rate_limit_error"));
            };
        });
        return services;
    }
}
