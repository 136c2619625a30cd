using System.Net;
using System.Net.Sockets;

namespace Exo.Testing;

public static class Ports
{
    /// <summary>A loopback port that was free a moment ago, for servers that must be told their port up front.</summary>
    public static int Free()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>A free port whose successor is free too, for a server that takes two (the Aspire dashboard and its OTLP receiver).</summary>
    public static int FreePair()
    {
        while (true)
        {
            var port = Free();
            if (port >= IPEndPoint.MaxPort) continue;
            using var next = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                next.Bind(new IPEndPoint(IPAddress.Loopback, port + 1));
                return port;
            }
            catch (SocketException)
            {
                // Taken: try another.
            }
        }
    }
}

/// <summary>
/// A gRPC service's two Kestrel endpoints on free loopback ports: <c>http</c> (HTTP/1.1, health) and <c>grpc</c> (h2c),
/// set on its command line the way the AppHost sets them in its environment.
/// </summary>
public sealed record ServiceEndpoints(int HttpPort, int GrpcPort)
{
    public static ServiceEndpoints Free() => new(Ports.Free(), Ports.Free());

    public string Http => $"http://127.0.0.1:{HttpPort}";

    public string Grpc => $"http://127.0.0.1:{GrpcPort}";

    /// <summary>Command-line settings for both endpoints; the grpc endpoint keeps the service's default protocol (HTTP/2 only).</summary>
    public string[] Args => [$"--Kestrel:Endpoints:http:Url={Http}", $"--Kestrel:Endpoints:grpc:Url={Grpc}"];
}
