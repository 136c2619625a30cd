using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Exo.AppHost;

/// <summary>
/// Debian's <c>redis-server</c> from PATH as an executable resource with a connection string, for machines without a
/// container runtime (where Aspire's <c>AddRedis</c> would wait forever): consumers get <c>ConnectionStrings__redis</c>,
/// and <c>WaitFor</c> waits for a PING to be answered.
/// </summary>
public sealed class RedisServerResource(string name, string dataDirectory)
    : ExecutableResource(name, "redis-server", dataDirectory), IResourceWithConnectionString
{
    public const string EndpointName = "tcp";

    public EndpointReference Endpoint => new(this, EndpointName);

    // 127.0.0.1 rather than the endpoint's "localhost": the server binds IPv4 loopback only.
    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create($"127.0.0.1:{Endpoint.Property(EndpointProperty.Port)}");
}

public static class RedisServerExtensions
{
    /// <summary>
    /// The cluster's Redis: redis-server from PATH, keeping its data (append-only file and snapshots) in
    /// <paramref name="dataDirectory"/> so that a restart loses nothing; else Aspire's Redis container where a container
    /// runtime answers; else null, and the services keep their state in memory.
    /// </summary>
    public static IResourceBuilder<IResourceWithConnectionString>? AddClusterRedis(this IDistributedApplicationBuilder builder, string name, string dataDirectory)
    {
        if (OnPath("redis-server"))
        {
            Directory.CreateDirectory(dataDirectory);
            var resource = new RedisServerResource(name, dataDirectory);
            var healthCheck = $"{name}-ping";
            builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(healthCheck, _ => new RedisPing(resource), failureStatus: null, tags: null, timeout: TimeSpan.FromSeconds(5)));
            return builder.AddResource(resource)
                .WithEndpoint(RedisServerResource.EndpointName, e =>
                {
                    e.UriScheme = "tcp";
                    e.IsProxied = false;
                    e.TargetHost = "127.0.0.1";
                })
                .WithArgs(context =>
                {
                    context.Args.Add("--port");
                    context.Args.Add(resource.Endpoint.Property(EndpointProperty.TargetPort));
                    foreach (var arg in new[] { "--bind", "127.0.0.1", "--dir", dataDirectory, "--appendonly", "yes", "--appendfsync", "everysec" }) context.Args.Add(arg);
                })
                .WithHealthCheck(healthCheck);
        }

        if (ContainerRuntimeAnswers()) return builder.AddRedis(name).WithDataBindMount(dataDirectory).WithPersistence();
        Console.WriteLine("warning: redis-server is not on PATH and no container runtime answers: the registry and planner keep the cluster's state "
            + "in memory, lost when they stop (Debian: apt-get install redis-server)");
        return null;
    }

    private static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, program)));

    /// <summary>Whether a Docker or Podman daemon answers: a client alone (as on many CI machines) would leave Aspire's container waiting.</summary>
    private static bool ContainerRuntimeAnswers()
    {
        foreach (var runtime in new[] { "docker", "podman" })
        {
            if (!OnPath(runtime)) continue;
            try
            {
                using var info = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(runtime, "info")
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                });
                if (info is null) continue;
                // Read, not just redirected: a full pipe would stall it.
                _ = info.StandardOutput.ReadToEndAsync();
                _ = info.StandardError.ReadToEndAsync();
                if (info.WaitForExit(TimeSpan.FromSeconds(5)) && info.ExitCode == 0) return true;
                if (!info.HasExited) info.Kill(entireProcessTree: true);
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // Not runnable after all.
            }
        }

        return false;
    }
}

/// <summary>Healthy once the server answers PING with PONG: listening is not enough while it loads its data from disk.</summary>
internal sealed class RedisPing(RedisServerResource redis) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", redis.Endpoint.Port, cancellationToken);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), cancellationToken);
            var buffer = new byte[64];
            var read = await stream.ReadAsync(buffer, cancellationToken);
            var reply = Encoding.ASCII.GetString(buffer, 0, read);
            return reply.StartsWith("+PONG", StringComparison.Ordinal) ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy($"PING answered '{reply.Trim()}'");
        }
        catch (Exception e) when (e is SocketException or IOException or InvalidOperationException)
        {
            return HealthCheckResult.Unhealthy(e.Message);
        }
    }
}
