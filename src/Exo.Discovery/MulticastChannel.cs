using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Threading.Channels;

namespace Exo.Discovery;

/// <summary>
/// The mDNS group (224.0.0.251 and ff02::fb, port 5353) on some interfaces: UDP sockets that share the port with other
/// listeners on this machine (SO_REUSEADDR), joined on every interface given, sending on each and hearing this
/// machine's own packets too (other processes here may be the registry or the worker).
/// </summary>
public sealed class MulticastChannel : IDisposable
{
    public const int Port = 5353;
    public static readonly IPAddress GroupV4 = IPAddress.Parse("224.0.0.251");
    public static readonly IPAddress GroupV6 = IPAddress.Parse("ff02::fb");

    private readonly List<(Socket Socket, IPEndPoint Group, List<int> Interfaces)> _families = [];
    private readonly SemaphoreSlim _sending = new(1, 1);
    private readonly Channel<byte[]> _received = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(64) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly CancellationTokenSource _closing = new();

    /// <summary>Joins the group on <paramref name="interfaces"/> (IPv6 where it works); fails only when IPv4 cannot join on any.</summary>
    public MulticastChannel(IReadOnlyList<NetworkInterface> interfaces)
    {
        Interfaces = interfaces;
        try
        {
            Open(AddressFamily.InterNetwork, GroupV4, i => i.GetIPProperties().GetIPv4Properties()?.Index);
            if (_families.Count == 0)
                throw new InvalidOperationException($"could not join the mDNS group 224.0.0.251 on {string.Join(", ", interfaces.Select(i => i.Name))}: is multicast enabled there?");
            if (Socket.OSSupportsIPv6) Open(AddressFamily.InterNetworkV6, GroupV6, i => i.GetIPProperties().GetIPv6Properties()?.Index);
        }
        catch
        {
            Dispose();
            throw;
        }

        // Each loop ends when its socket is closed by Dispose.
        foreach (var (socket, _, _) in _families) _ = Task.Run(() => ReceiveLoopAsync(socket));
    }

    public IReadOnlyList<NetworkInterface> Interfaces { get; }

    /// <summary>Where this channel listens, for messages a person reads.</summary>
    public string Describe() => $"{string.Join(", ", Interfaces.Select(i => i.Name))} ({string.Join(", ", _families.Select(f => f.Group.Address))} port {Port})";

    /// <summary>Sends <paramref name="packet"/> to the group on every joined interface; an interface that fails is skipped.</summary>
    public async Task SendAsync(byte[] packet, CancellationToken cancellationToken)
    {
        // The outgoing interface is a socket option: one send at a time.
        await _sending.WaitAsync(cancellationToken);
        try
        {
            foreach (var (socket, group, interfaces) in _families)
            {
                foreach (var index in interfaces)
                {
                    try
                    {
                        if (socket.AddressFamily == AddressFamily.InterNetwork)
                            socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastInterface, IPAddress.HostToNetworkOrder(index));
                        else
                            socket.SetSocketOption(SocketOptionLevel.IPv6, SocketOptionName.MulticastInterface, index);
                        await socket.SendToAsync(packet, SocketFlags.None, group, cancellationToken);
                    }
                    catch (SocketException)
                    {
                        // An interface that went down, or has no route for the group: the others still get the packet.
                    }
                }
            }
        }
        finally
        {
            _sending.Release();
        }
    }

    /// <summary>The next datagram heard on the group, from any interface and family (the oldest are dropped when nobody reads).</summary>
    public ValueTask<byte[]> ReceiveAsync(CancellationToken cancellationToken) => _received.Reader.ReadAsync(cancellationToken);

    private void Open(AddressFamily family, IPAddress group, Func<NetworkInterface, int?> indexOf)
    {
        var socket = new Socket(family, SocketType.Dgram, ProtocolType.Udp);
        var level = family == AddressFamily.InterNetwork ? SocketOptionLevel.IP : SocketOptionLevel.IPv6;
        var joined = new List<int>();
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            if (family == AddressFamily.InterNetworkV6) socket.DualMode = false;
            socket.Bind(new IPEndPoint(family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, Port));
            // RFC 6762 §11: mDNS packets are sent with IP TTL / hop limit 255.
            socket.SetSocketOption(level, SocketOptionName.MulticastTimeToLive, 255);
            socket.SetSocketOption(level, SocketOptionName.MulticastLoopback, true);
            foreach (var index in Interfaces.Select(indexOf).OfType<int>().Distinct())
            {
                try
                {
                    object membership = family == AddressFamily.InterNetwork ? new MulticastOption(group, index) : new IPv6MulticastOption(group, index);
                    socket.SetSocketOption(level, SocketOptionName.AddMembership, membership);
                    joined.Add(index);
                }
                catch (SocketException)
                {
                    // This interface does not do multicast for this family (IPv6 on a loopback, say).
                }
            }
        }
        catch (SocketException) when (family == AddressFamily.InterNetworkV6)
        {
            // No IPv6 here: IPv4 alone does.
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new InvalidOperationException($"cannot listen on UDP port {Port} for mDNS: {e.Message}", e);
        }

        if (joined.Count == 0)
        {
            socket.Dispose();
            return;
        }

        _families.Add((socket, new IPEndPoint(group, Port), joined));
    }

    private async Task ReceiveLoopAsync(Socket socket)
    {
        // One byte more than the largest packet, so that a larger one arrives too long (and is refused by the reader,
        // which counts it) rather than cut to a size that looks right.
        var buffer = new byte[ServicePacket.MaxSize + 1];
        EndPoint any = socket.AddressFamily == AddressFamily.InterNetwork ? new IPEndPoint(IPAddress.Any, 0) : new IPEndPoint(IPAddress.IPv6Any, 0);
        while (!_closing.IsCancellationRequested)
        {
            int length;
            try
            {
                length = (await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, _closing.Token)).ReceivedBytes;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.MessageSize)
            {
                // Where the platform reports a datagram larger than the buffer instead of cutting it: not ours to read.
                continue;
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _received.Writer.TryWrite(buffer.AsSpan(0, length).ToArray());
        }
    }

    public void Dispose()
    {
        _closing.Cancel();
        foreach (var (socket, _, _) in _families) socket.Dispose();
        _received.Writer.TryComplete();
        _closing.Dispose();
        _sending.Dispose();
    }
}
