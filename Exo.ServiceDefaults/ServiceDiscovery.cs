using Microsoft.Extensions.Configuration;

namespace Exo.ServiceDefaults;

/// <summary>
/// Service addresses and connection strings from configuration, under the names an Aspire AppHost injects:
/// <c>services__planner__http__0=http://127.0.0.1:5101</c> (configuration key <c>services:planner:http:0</c>) and
/// <c>ConnectionStrings__redis=127.0.0.1:6379</c>.
/// </summary>
public static class ServiceDiscovery
{
    public const string RedisConnectionName = "redis";

    /// <summary>The first address of <paramref name="service"/>'s endpoint; a missing or malformed one names the key to set.</summary>
    public static Uri ResolveServiceUri(this IConfiguration configuration, string service, string endpoint = "http")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(service);
        ArgumentException.ThrowIfNullOrWhiteSpace(endpoint);
        var key = $"services:{service}:{endpoint}:0";
        var value = configuration[key];
        if (string.IsNullOrWhiteSpace(value))
        {
            var known = configuration.GetSection($"services:{service}").GetChildren().Select(c => c.Key).ToArray();
            throw new InvalidOperationException(
                $"no address for service '{service}': set configuration key '{key}' (environment variable "
                + $"'services__{service}__{endpoint}__0'), for example to http://127.0.0.1:5000"
                + (known.Length > 0 ? $"; '{service}' has only these endpoints configured: {string.Join(", ", known)}" : ""));
        }

        return Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new InvalidOperationException($"configuration key '{key}' is '{value}', which is not an absolute http or https address");
    }

    /// <summary>The Redis connection string, or null when none is configured (the caller then falls back and warns).</summary>
    public static string? GetRedisConnectionString(this IConfiguration configuration) =>
        configuration.GetConnectionString(RedisConnectionName) is { Length: > 0 } value && !string.IsNullOrWhiteSpace(value) ? value : null;
}
