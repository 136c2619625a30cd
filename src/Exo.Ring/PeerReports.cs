using System.Collections.Concurrent;
using Exo.Contracts.V1;
using Grpc.Core;

namespace Exo.Ring;

/// <summary>A stream to a node of the ring broke: which node, at which address, and what the stream said.</summary>
public sealed record PeerLoss(string NodeId, string Endpoint, string Reason);

/// <summary>
/// Tells the registry about nodes this process lost its stream to. The registry checks the address and removes a node
/// that no longer answers, so a killed worker is planned out in about a second rather than when its lease runs out.
/// </summary>
public sealed class PeerReports(Contracts.V1.Registry.RegistryClient registry, TimeProvider time)
{
    // A broken link tries again every half second: one report per peer in this time is enough.
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(2);
    private readonly ConcurrentDictionary<string, long> _lastReported = new(StringComparer.Ordinal);

    public void Lost(PeerLoss loss)
    {
        var now = time.GetTimestamp();
        if (_lastReported.TryGetValue(loss.Endpoint, out var at) && time.GetElapsedTime(at, now) < Quiet) return;
        _lastReported[loss.Endpoint] = now;
        _ = ReportAsync(loss);
    }

    private async Task ReportAsync(PeerLoss loss)
    {
        try
        {
            var request = new ReportUnreachableRequest { NodeId = loss.NodeId, GrpcEndpoint = loss.Endpoint, Reason = loss.Reason };
            await registry.ReportUnreachableAsync(request, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(5)));
        }
        catch (Exception)
        {
            // Fire and forget, so nothing may escape unobserved. The registry out of reach, the node's lease still runs
            // out, and whoever follows the registry says so.
        }
    }
}
