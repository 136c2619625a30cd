using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Exo.AppHost.Hosting;

/// <summary>A throw-away redis-server on a loopback port: nothing is saved, so each run starts empty.</summary>
public sealed class RedisResource : Resource, IResourceWithConnectionString
{
    private readonly string _serverPath;

    internal RedisResource(string name, string serverPath, int port) : base(name)
    {
        _serverPath = serverPath;
        AddEndpoint(new EndpointAnnotation("tcp", "127.0.0.1", port));
        HealthCheck = AnswersPingAsync;
    }

    public int Port => GetEndpoint("tcp").Port;

    /// <summary>A StackExchange.Redis configuration string.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    public override ProcessCommand Command =>
        new(_serverPath, ["--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], Path.GetTempPath());

    private async Task<bool> AnswersPingAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, Port, cancellationToken);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray(), cancellationToken);
            var reply = new byte[16];
            var read = await stream.ReadAsync(reply, cancellationToken);
            return Encoding.ASCII.GetString(reply, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (SocketException)
        {
            return false;
        }
        catch (IOException)
        {
            return false;
        }
    }
}

public static class RedisResourceExtensions
{
    /// <summary>
    /// A redis-server from PATH on a free loopback port, or null when there is none: callers then run without Redis
    /// (the services keep their state in memory) and should say so.
    /// </summary>
    public static ResourceBuilder<RedisResource>? AddRedis(this DistributedApplicationBuilder app, string name)
    {
        var server = FindOnPath("redis-server");
        return server is null ? null : app.AddResource(new RedisResource(name, server, app.AllocatePort()));
    }

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program))
            .FirstOrDefault(File.Exists);
}
