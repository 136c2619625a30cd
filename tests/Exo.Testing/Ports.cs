using System.Net;
using System.Net.Sockets;

namespace Exo.Testing;

public static class Ports
{
    // Ports for servers are taken below the kernel's ephemeral range: a port that bind(0) handed out and let go can be
    // taken again as the source port of any outgoing connection before the server binds it (CI saw exactly that).
    // Each test process starts at its own random place, so parallel test assemblies seldom meet.
    private static readonly (int Low, int High) Range = ServerRange();
    private static int _next = Random.Shared.Next(Range.Low, Range.High);
    private static readonly Lock Gate = new();

    /// <summary>A loopback port that was free a moment ago and that no outgoing connection will take, for servers that must be told their port up front.</summary>
    public static int Free()
    {
        lock (Gate)
        {
            for (var tries = 0; tries < Range.High - Range.Low; tries++)
            {
                var port = _next;
                _next = _next + 1 >= Range.High ? Range.Low : _next + 1;
                if (IsFree(port)) return port;
            }
        }

        throw new InvalidOperationException($"no free loopback port in {Range.Low}-{Range.High}");
    }

    /// <summary>A free port whose successor is free too, for a server that takes two (the Aspire dashboard and its OTLP receiver).</summary>
    public static int FreePair()
    {
        while (true)
        {
            var port = Free();
            if (port + 1 < Range.High && IsFree(port + 1))
            {
                lock (Gate) _next = port + 2 >= Range.High ? Range.Low : port + 2;
                return port;
            }
        }
    }

    private static bool IsFree(int port)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Below the ephemeral range when there is room there (Linux: 32768-60999), else above it.</summary>
    private static (int Low, int High) ServerRange()
    {
        var (ephemeralLow, ephemeralHigh) = (32768, 60999);
        try
        {
            var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && int.TryParse(parts[0], out var low) && int.TryParse(parts[1], out var high)) (ephemeralLow, ephemeralHigh) = (low, high);
        }
        catch (IOException)
        {
            // Not Linux: keep the defaults.
        }

        return ephemeralLow - 12_000 >= 1024 ? (ephemeralLow - 12_000, ephemeralLow) : (ephemeralHigh + 1, IPEndPoint.MaxPort);
    }
}
