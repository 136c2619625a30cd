namespace Exo.Planner.Planning;

/// <summary>
/// Splits a model's layers over nodes that have all measured their speed, so that the ring's slowest stage is as fast
/// as it can be. A stage's time per token is <see cref="StepTime.StageSeconds"/>; with several requests in flight every
/// stage works on another batch at once and the slowest one sets the ring's pace, so that maximum is what is
/// minimised (one stream alone waits for the sum of the stages instead, which the next rule keeps low). Among
/// splits whose slowest stage is within <see cref="Tolerance"/> of the best, the least total time wins (the fastest
/// nodes take all the layers they can, which is what one stream feels), then the fewest stages (fewer network hops).
/// <para>
/// Every node with memory for a layer joins the ring and runs at least one, as with the memory-weighted split: speeds
/// are measured once as a worker starts, and on a busy machine they can be several times off, so leaving a node out
/// for being slow would idle a machine on a bad reading, while one layer too many on a slow node costs only that
/// layer's time. Only when no ring of all of them holds the model (fewer layers than nodes, or only one node with room
/// for the embeddings or the head) is the ring chosen freely, and a node that would slow it is then left out.
/// </para>
/// <para>
/// Only the first stage (embeddings) and the last (head) differ in cost and memory; the stages between cost the same per
/// layer wherever they sit. Under a bound on the slowest stage each node can hold a number of layers in each role (what
/// fits both its memory and the bound), and some ring holds the model when, for some (first, last) pair, those add up
/// to the layer count. The best bound is found by bisection over the finite set of times a stage can take; then, for
/// every pair within it, the layers are dealt one at a time to the stage whose time grows least (a stage's time is
/// convex in its layers, so this gives the least total). Middle stages keep the canonical order, and of equal rings the
/// one earliest in that order wins: the result depends only on the nodes.
/// </para>
/// </summary>
internal static class SpeedSplit
{
    // Slowest stages within a hundredth of a percent of the best are as good: far below what a measurement resolves,
    // so a few bytes of embedding row do not decide the ring and the total time does.
    private const double Tolerance = 1e-4;

    private enum Role { Alone, First, Middle, Last }

    /// <summary>The ring (a subset of <paramref name="nodes"/>) and each stage's layer count, or null when no ring of these nodes holds the model.</summary>
    public static (List<NodeCapacity> Ring, int[] Counts)? Plan(List<NodeCapacity> nodes, ModelProfile profile) =>
        Best(nodes, new Search(nodes, profile, everyoneJoins: true)) ?? Best(nodes, new Search(nodes, profile, everyoneJoins: false));

    /// <summary>The best ring the search allows: least slowest stage, then least total time, fewest stages, canonical order.</summary>
    private static (List<NodeCapacity> Ring, int[] Counts)? Best(List<NodeCapacity> nodes, Search search)
    {
        if (search.Fastest() is not { } fastest) return null;

        var bound = search.Bound(fastest * (1 + Tolerance));
        var candidates = Enumerable.Range(0, nodes.Count)
            .SelectMany(first => Enumerable.Range(0, nodes.Count).Select(last => search.Ring(first, last, bound)))
            .OfType<Candidate>()
            .ToList();
        var leastTotal = candidates.Min(c => c.Total);
        var chosen = candidates.Where(c => c.Total <= leastTotal * (1 + Tolerance))
            .OrderBy(c => c.Ring.Length)
            .ThenBy(c => c.Ring, Comparer<int[]>.Create((x, y) => x.AsSpan().SequenceCompareTo(y)))
            .First();
        return (chosen.Ring.Select(i => nodes[i]).ToList(), chosen.Counts);
    }

    private static bool IsFirst(Role role) => role is Role.Alone or Role.First;

    private static bool IsLast(Role role) => role is Role.Alone or Role.Last;

    /// <summary>A ring by node index, its layer counts and its total time per token (one stream's).</summary>
    private sealed record Candidate(int[] Ring, int[] Counts, double Total);

    /// <summary>Under a bound on the slowest stage, the most layers each node holds in each role (0 when not even one).</summary>
    private sealed record Caps(int[] Alone, int[] First, int[] Middle, int[] Last, long MiddleTotal, int MiddlesWithALayer)
    {
        public int Of(int node, Role role) => role switch
        {
            Role.Alone => Alone[node],
            Role.First => First[node],
            Role.Middle => Middle[node],
            _ => Last[node],
        };
    }

    private sealed class Search
    {
        private readonly int _layers;
        private readonly bool _everyoneJoins;
        // Nodes with memory for a layer: those that join the ring when everyone does.
        private readonly int _joining;
        // Per node and role, the stage's time per token for each number of layers that fits the node's memory (from 0).
        private readonly double[][][] _stageTimes;
        // Every time a stage could take, ascending: the best bound is one of them.
        private readonly double[] _times;

        public Search(List<NodeCapacity> nodes, ModelProfile profile, bool everyoneJoins)
        {
            _layers = profile.LayerCount;
            _everyoneJoins = everyoneJoins;
            _stageTimes = new double[nodes.Count][][];
            var times = new List<double>();
            for (var i = 0; i < nodes.Count; i++)
            {
                var node = nodes[i];
                _stageTimes[i] = new double[4][];
                foreach (var role in Enum.GetValues<Role>())
                {
                    var room = node.AvailableMemoryBytes - profile.FixedBytes(IsFirst(role), IsLast(role));
                    var cap = room < 0 ? -1 : (int)Math.Min(room / profile.LayerCostBytes, _layers);
                    var table = _stageTimes[i][(int)role] = [.. Enumerable.Range(0, cap + 1)
                        .Select(layers => StepTime.StageSeconds(node, profile, layers, IsFirst(role), IsLast(role)))];
                    // A node alone runs every layer; in a longer ring a stage runs at least one.
                    if (role == Role.Alone) times.AddRange(table.Skip(_layers));
                    else times.AddRange(table.Skip(1));
                }
            }

            _times = [.. times.Distinct().Order()];
            _joining = _stageTimes.Count(roles => roles[(int)Role.Middle].Length > 1);
        }

        /// <summary>The least slowest-stage time of any ring that holds the model; null when none does.</summary>
        public double? Fastest()
        {
            if (_times.Length == 0 || !AnyRing(Bound(_times[^1]))) return null;
            int low = 0, high = _times.Length - 1;
            while (low < high)
            {
                var mid = (low + high) / 2;
                if (AnyRing(Bound(_times[mid]))) high = mid;
                else low = mid + 1;
            }

            return _times[low];
        }

        public Caps Bound(double seconds)
        {
            int[] Each(Role role) => [.. Enumerable.Range(0, _stageTimes.Length).Select(node => Cap(node, role, seconds))];
            var middle = Each(Role.Middle);
            return new Caps(Each(Role.Alone), Each(Role.First), middle, Each(Role.Last), middle.Sum(c => (long)c), middle.Count(c => c >= 1));
        }

        /// <summary>
        /// The ring from <paramref name="first"/> to <paramref name="last"/> (one node when they are the same) with no
        /// stage over the bound and the least total time: each stage starts with the layer it must hold, and each next
        /// layer goes to the stage it slows least. Null when no such ring holds the model.
        /// </summary>
        public Candidate? Ring(int first, int last, Caps bound)
        {
            if (first == last)
            {
                return AloneHolds(first, bound) ? new Candidate([first], [_layers], Time(first, Role.Alone, _layers)) : null;
            }

            if (!Holds(first, last, bound)) return null;
            int[] ring = [first, .. Enumerable.Range(0, _stageTimes.Length).Where(i => i != first && i != last && bound.Middle[i] >= 1), last];
            var roles = ring.Select((_, k) => k == 0 ? Role.First : k == ring.Length - 1 ? Role.Last : Role.Middle).ToArray();
            var caps = ring.Select((node, k) => bound.Of(node, roles[k])).ToArray();
            var counts = ring.Select((_, k) => roles[k] != Role.Middle || _everyoneJoins ? 1 : 0).ToArray();

            for (var dealt = counts.Sum(); dealt < _layers; dealt++)
            {
                var pick = -1;
                var cheapest = double.PositiveInfinity;
                for (var k = 0; k < ring.Length; k++)
                {
                    if (counts[k] >= caps[k]) continue;
                    var growth = Time(ring[k], roles[k], counts[k] + 1) - Time(ring[k], roles[k], counts[k]);
                    // Equal growth (to rounding) goes to the earlier stage.
                    if (growth < cheapest * (1 - Tolerance))
                    {
                        cheapest = growth;
                        pick = k;
                    }
                }

                counts[pick]++;
            }

            var kept = Enumerable.Range(0, ring.Length).Where(k => counts[k] > 0).ToArray();
            return new Candidate([.. kept.Select(k => ring[k])], [.. kept.Select(k => counts[k])], kept.Sum(k => Time(ring[k], roles[k], counts[k])));
        }

        private bool AnyRing(Caps bound)
        {
            for (var first = 0; first < _stageTimes.Length; first++)
            {
                for (var last = 0; last < _stageTimes.Length; last++)
                {
                    if (first == last ? AloneHolds(first, bound) : Holds(first, last, bound)) return true;
                }
            }

            return false;
        }

        /// <summary>Whether a ring of two or more stages from <paramref name="first"/> to <paramref name="last"/> holds every layer within the bound.</summary>
        private bool Holds(int first, int last, Caps bound) =>
            _layers >= 2 && bound.First[first] >= 1 && bound.Last[last] >= 1
            && bound.First[first] + bound.Last[last] + bound.MiddleTotal - bound.Middle[first] - bound.Middle[last] >= _layers
            // A node that holds a layer as the first or last one holds it in the middle too, so this counts every joining node.
            && (!_everyoneJoins || (bound.MiddlesWithALayer == _joining && _joining <= _layers));

        private bool AloneHolds(int node, Caps bound) => bound.Alone[node] >= _layers && (!_everyoneJoins || _joining == 1);

        /// <summary>The most layers the node holds in this role within its memory and <paramref name="seconds"/>.</summary>
        private int Cap(int node, Role role, double seconds)
        {
            var table = _stageTimes[node][(int)role];
            int low = 0, high = table.Length - 1;
            while (low < high)
            {
                var mid = (low + high + 1) / 2;
                if (table[mid] <= seconds) low = mid;
                else high = mid - 1;
            }

            return Math.Max(low, 0);
        }

        private double Time(int node, Role role, int layers) => _stageTimes[node][(int)role][layers];
    }
}
