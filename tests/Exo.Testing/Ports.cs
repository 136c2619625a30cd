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
