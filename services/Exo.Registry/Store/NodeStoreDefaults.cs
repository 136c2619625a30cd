namespace Exo.Registry.Store;

/// <summary>Limits and checks both stores apply alike.</summary>
public static class NodeStoreDefaults
{
    /// <summary>How often expired leases are looked for: a silent node is gone within its lease TTL plus this.</summary>
    public static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(1);

    /// <summary>A lease that, with the sweep, removes a silent node within 10 s; heartbeats should come every 2 s or so.</summary>
    public static readonly TimeSpan LeaseTtl = TimeSpan.FromSeconds(8);

    private static readonly TimeSpan MaxLeaseTtl = TimeSpan.FromMinutes(10);

    internal static void ValidateRegistration(NodeRecord node, TimeSpan leaseTtl)
    {
        ArgumentNullException.ThrowIfNull(node);
        node.Validate();
        if (leaseTtl < TimeSpan.FromMilliseconds(100) || leaseTtl > MaxLeaseTtl)
            throw new ArgumentOutOfRangeException(nameof(leaseTtl), leaseTtl, $"a lease lasts from 100 ms to {MaxLeaseTtl.TotalMinutes:0} minutes");
    }
}
