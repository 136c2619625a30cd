namespace Exo.Planner.Planning;

/// <summary>
/// Places a model as several rings (replicas) when the cluster's memory holds it more than once, each ring split by
/// <see cref="RingPlanner"/> over its own nodes. A pure function of the nodes, the profile, the limit and the current rings:
/// <list type="number">
/// <item>A current ring whose nodes are all present, and which still holds the model on them, is kept: same nodes, and
/// the same layers and version unless its own nodes' memory or speed moved enough to change its split.</item>
/// <item>While the limit allows, new rings form from the nodes in no ring, each over as few nodes as it needs: the
/// largest free node, then, until the ring holds the model, the smallest node that completes it (else the largest).</item>
/// <item>Nodes left over (too few to hold the model on their own, or beyond the limit) join a ring as extra stages, the
/// ring with the fewest stages first (then ring order), since one more stage adds memory for KV caches and, with
/// requests in flight, throughput. The ring it joins is re-planned and gets a new version. A node whose ring lost
/// another node joins only a ring that this plan changes anyway, so a working ring is never disturbed by another's
/// loss: it sits out until membership next changes. A node that no ring's split would use (no room for a layer, or more
/// stages than layers) sits out too.</item>
/// </list>
/// With a limit of 1 this is one ring over every node that can take part, as <see cref="RingPlanner"/> plans it.
/// Which rings form can depend on the order nodes joined in: a ring that took in extra nodes keeps them, so nodes that
/// arrive later form a ring of their own only when they hold the model without them.
/// </summary>
public static class ReplicaPlanner
{
    public static ReplicaResult TryPlan(IEnumerable<NodeCapacity> nodes, ModelProfile profile, Replicas replicas, IReadOnlyList<PlannedRing> current)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(replicas);
        ArgumentNullException.ThrowIfNull(current);
        profile.Validate();
        var all = RingPlanner.Canonical(nodes);
        var free = new List<NodeCapacity>(all);
        var groups = new List<Group>();

        foreach (var ring in current)
        {
            if (groups.Count >= replicas.Limit) break;
            var members = ring.Stages.Select(s => free.FirstOrDefault(n => n.NodeId == s.NodeId)).ToList();
            if (members.Any(m => m is null) || Split(members!, profile) is not { } stages) continue;
            Take(new Group(members!, stages, ring));
        }

        while (groups.Count < replicas.Limit && Form(free, profile) is { } formed) Take(formed);

        // Form takes every free node before it gives up, so no ring means that all of them together do not hold the model.
        if (groups.Count == 0) return new ReplicaResult([], RingPlanner.TryPlan(all, profile, 1).Error!);

        var present = all.Select(n => n.NodeId).ToHashSet(StringComparer.Ordinal);
        var survivors = current.Where(r => r.Stages.Any(s => !present.Contains(s.NodeId)))
            .SelectMany(r => r.Stages).Select(s => s.NodeId).ToHashSet(StringComparer.Ordinal);
        // Survivors last: a node before them that joins an unchanged ring changes it, and then they may join it too.
        foreach (var node in free.OrderBy(n => survivors.Contains(n.NodeId)).ToList())
        {
            // Stable: equal stage counts keep ring order.
            foreach (var group in groups.OrderBy(g => g.Stages.Length).ToList())
            {
                if (group.Unchanged && survivors.Contains(node.NodeId)) continue;
                // The grown ring must use the new node and keep every member: a split that squeezed one out would idle it.
                if (Split([.. group.Members, node], profile) is not { } grown || grown.Length != group.Members.Count + 1) continue;
                groups[groups.IndexOf(group)] = new Group([.. group.Members, node], grown, group.Kept);
                break;
            }
        }

        return new ReplicaResult([.. groups.Select(g => g.Ring())], null);

        void Take(Group group)
        {
            groups.Add(group);
            free.RemoveAll(group.Members.Contains);
        }
    }

    /// <summary>A ring being planned: its nodes, their split, and the current ring it keeps, if any.</summary>
    private sealed class Group
    {
        /// <param name="members">The nodes given to the ring; those its split leaves out stay free.</param>
        public Group(List<NodeCapacity> members, PlacementStage[] stages, PlannedRing? kept)
        {
            Members = members.Where(n => stages.Any(s => s.NodeId == n.NodeId)).ToList();
            Stages = stages;
            Kept = kept;
        }

        public List<NodeCapacity> Members { get; }

        public PlannedRing? Kept { get; }

        public PlacementStage[] Stages { get; }

        /// <summary>A current ring kept exactly as it was.</summary>
        public bool Unchanged => Kept is not null && Kept.SameLayout(new PlannedRing(null, Stages));

        public PlannedRing Ring() => new(Unchanged ? Kept!.Version : null, Stages);
    }

    /// <summary>A ring of the fewest free nodes that hold the model, or null when all of them together do not.</summary>
    private static Group? Form(List<NodeCapacity> free, ModelProfile profile)
    {
        if (free.Count == 0) return null;
        var group = new List<NodeCapacity> { free[0] };
        var rest = free.Skip(1).ToList();
        PlacementStage[]? stages;
        while ((stages = Split(group, profile)) is null)
        {
            // Free nodes are in canonical order, so of equal memory the earliest completes the ring.
            var completes = rest.Where(n => Split([.. group, n], profile) is not null).OrderBy(n => n.AvailableMemoryBytes).FirstOrDefault();
            var next = completes ?? rest.FirstOrDefault();
            if (next is null) return null;
            group.Add(next);
            rest.Remove(next);
        }

        return new Group(group, stages, null);
    }

    private static PlacementStage[]? Split(List<NodeCapacity> members, ModelProfile profile) => RingPlanner.Split(RingPlanner.Canonical(members), profile);
}
