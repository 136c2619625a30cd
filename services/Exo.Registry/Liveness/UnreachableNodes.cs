using System.Collections.Concurrent;
using System.Net.Sockets;
using Exo.Registry.Store;

namespace Exo.Registry.Liveness;

/// <summary>
/// Acts on a peer's report that a node cannot be reached: connects to the node's gRPC address, and removes the node
/// when nothing answers there. A killed process's port refuses at once and an unplugged machine times out within a
/// second, so the ring is re-planned long before the lease would run out; a node that answers is left alone, so one
/// peer's network hiccup cannot evict it. Concurrent reports of one node share one check.
/// </summary>
public sealed partial class UnreachableNodes(INodeStore store, ILogger<UnreachableNodes> logger)
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(1);
    private const int Attempts = 2;

    private readonly ConcurrentDictionary<string, Lazy<Task<bool>>> _checks = new(StringComparer.Ordinal);

    /// <summary>True when the node was registered at <paramref name="endpoint"/>, did not answer, and was removed.</summary>
    public Task<bool> CheckAsync(string nodeId, string endpoint, string reason, CancellationToken cancellationToken)
    {
        var key = nodeId + " " + endpoint;
        return _checks.GetOrAdd(key, _ => new Lazy<Task<bool>>(() => RunAsync(key, nodeId, endpoint, reason))).Value.WaitAsync(cancellationToken);
    }

    private async Task<bool> RunAsync(string key, string nodeId, string endpoint, string reason)
    {
        try
        {
            return await RemoveIfSilentAsync(nodeId, endpoint, reason);
        }
        finally
        {
            _checks.TryRemove(key, out _);
        }
    }

    private async Task<bool> RemoveIfSilentAsync(string nodeId, string endpoint, string reason)
    {
        // Yields first, so the check is in the dictionary before it can remove itself. It takes no cancellation token:
        // a reporter that gives up must not leave a dead node in the ring.
        await Task.Yield();
        var node = (await store.ListAsync(CancellationToken.None)).FirstOrDefault(n => n.NodeId == nodeId && n.GrpcEndpoint == endpoint);
        if (node is null) return false;
        if (await AnswersAsync(endpoint))
        {
            LogStillThere(nodeId, endpoint, reason);
            return false;
        }

        if (!await store.DeregisterAsync(node.NodeId, node.InstanceToken, CancellationToken.None)) return false;
        LogRemoved(nodeId, endpoint, reason);
        return true;
    }

    /// <summary>Whether anything accepts a connection at the endpoint's host and port.</summary>
    private static async Task<bool> AnswersAsync(string endpoint)
    {
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Port <= 0) return false;
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            using var timeout = new CancellationTokenSource(ConnectTimeout);
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(uri.DnsSafeHost, uri.Port, timeout.Token);
                return true;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                // Refused or silent: asked once more, so a single dropped packet is not taken for a dead machine.
            }
        }

        return false;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {NodeId} was reported unreachable ({Reason}) and nothing answers at {Endpoint}: removed")]
    private partial void LogRemoved(string nodeId, string endpoint, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {NodeId} was reported unreachable ({Reason}) but answers at {Endpoint}: kept")]
    private partial void LogStillThere(string nodeId, string endpoint, string reason);
}
