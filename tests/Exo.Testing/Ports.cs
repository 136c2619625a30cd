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
}
