using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Exo.Inference.Kernels;

// Attention: the job that spreads causal attention over the workers, with its score, softmax and weighted-sum steps.
internal sealed unsafe partial class SimdKernels<S, V>
{
    /// <summary>Causal attention, one item per query, key/value head and chunk of the query heads that share it.</summary>
    private sealed class AttentionJob(Scratch scratch) : IParallelWork
    {
        /// <summary>Query heads that read each key and value row together (see <see cref="HeadScores{N}"/>).</summary>
        public const int HeadChunk = 4;

        // Key and value rows prefetched this many positions ahead.
        private const int AheadRows = 8;

        private float* _q, _k, _v, _output;
        private int _first, _heads, _kvHeads, _headDim, _window;

        /// <summary>Chunks per key/value head: items split below a key/value head, so one shared by every query head still spreads over all workers.</summary>
        public static int Chunks(int group) => (group + HeadChunk - 1) / HeadChunk;

        public void Set(float* q, float* k, float* v, float* output, int first, int heads, int kvHeads, int headDim, int window)
        {
            _q = q;
            _k = k;
            _v = v;
            _output = output;
            (_first, _heads, _kvHeads, _headDim, _window) = (first, heads, kvHeads, headDim, window);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int worker, int start, int end)
        {
            var d = _headDim;
            var kvDim = (long)_kvHeads * d;
            var group = _heads / _kvHeads;
            var chunks = Chunks(group);
            var scores = scratch.Scores(worker);
            for (var item = start; item < end; item++)
            {
                int t = item / (_kvHeads * chunks), g = item / chunks % _kvHeads, c = item % chunks;
                var position = _first + t;
                var from = _window > 0 ? Math.Max(0, position - _window + 1) : 0;
                var count = position - from + 1;
                var kv = from * kvDim + (long)g * d;
                var h = g * group + c * HeadChunk;
                var head = ((long)t * _heads + h) * d;
                switch (Math.Min(HeadChunk, (g + 1) * group - h))
                {
                    case 4: Heads<Rows4>(_q + head, _k + kv, _v + kv, kvDim, d, count, scores, _output + head); break;
                    case 3: Heads<Rows3>(_q + head, _k + kv, _v + kv, kvDim, d, count, scores, _output + head); break;
                    case 2: Heads<Rows2>(_q + head, _k + kv, _v + kv, kvDim, d, count, scores, _output + head); break;
                    default: Heads<Rows1>(_q + head, _k + kv, _v + kv, kvDim, d, count, scores, _output + head); break;
                }
            }
        }

        /// <summary>
        /// Attention of N consecutive query heads (d apart in q and output) over count key and value rows stride apart;
        /// scores holds N rows of count scores.
        /// </summary>
        private static void Heads<N>(float* q, float* k, float* v, long stride, int d, int count, float* scores, float* output)
            where N : IRowCount
        {
            var max = stackalloc float[HeadChunk];
            HeadScores<N>(q, k, stride, d, count, 1f / MathF.Sqrt(d), scores, max);
            var inverse = stackalloc float[HeadChunk];
            for (var j = 0; j < N.Value; j++) inverse[j] = 1f / Softmax(scores + j * count, count, max[j]);
            HeadSums<N>(scores, v, stride, d, count, output);
            for (var j = 0; j < N.Value; j++)
            {
                var o = output + j * d;
                for (var i = 0; i < d; i++) o[i] *= inverse[j];
            }
        }

        /// <summary>
        /// scores[j · count + p] = q_j · k_p × scale for the N heads; max[j] gets each head's largest. Each key row is
        /// loaded once for all N heads, which also gives the core N independent chains; every score is summed exactly
        /// as <see cref="Dot"/> sums it.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void HeadScores<N>(float* q, float* k, long stride, int d, int count, float scale, float* scores, float* max)
            where N : IRowCount
        {
            float* q0 = q, q1 = q + d, q2 = q + 2 * d, q3 = q + 3 * d;
            float m0 = float.NegativeInfinity, m1 = m0, m2 = m0, m3 = m0;
            for (var p = 0; p < count; p++, k += stride)
            {
                // Rows lie a whole position apart, in steps the hardware prefetchers do not follow.
                if (Sse.IsSupported)
                {
                    for (var line = 0; line < d; line += 16) Sse.Prefetch0(k + AheadRows * stride + line);
                }

                V a0 = S.Zero, a1 = S.Zero, a2 = S.Zero, a3 = S.Zero;
                nint i = 0;
                for (; i + S.Count <= d; i += S.Count)
                {
                    var ki = S.Load(k + i);
                    a0 = S.MultiplyAdd(S.Load(q0 + i), ki, a0);
                    if (N.Value > 1) a1 = S.MultiplyAdd(S.Load(q1 + i), ki, a1);
                    if (N.Value > 2) a2 = S.MultiplyAdd(S.Load(q2 + i), ki, a2);
                    if (N.Value > 3) a3 = S.MultiplyAdd(S.Load(q3 + i), ki, a3);
                }

                float s0 = S.Sum(a0), s1 = N.Value > 1 ? S.Sum(a1) : 0, s2 = N.Value > 2 ? S.Sum(a2) : 0, s3 = N.Value > 3 ? S.Sum(a3) : 0;
                for (; i < d; i++)
                {
                    s0 = MathF.FusedMultiplyAdd(q0[i], k[i], s0);
                    if (N.Value > 1) s1 = MathF.FusedMultiplyAdd(q1[i], k[i], s1);
                    if (N.Value > 2) s2 = MathF.FusedMultiplyAdd(q2[i], k[i], s2);
                    if (N.Value > 3) s3 = MathF.FusedMultiplyAdd(q3[i], k[i], s3);
                }

                scores[p] = s0 * scale;
                m0 = MathF.Max(m0, scores[p]);
                if (N.Value > 1) m1 = MathF.Max(m1, scores[count + p] = s1 * scale);
                if (N.Value > 2) m2 = MathF.Max(m2, scores[2 * count + p] = s2 * scale);
                if (N.Value > 3) m3 = MathF.Max(m3, scores[3 * count + p] = s3 * scale);
            }

            (max[0], max[1], max[2], max[3]) = (m0, m1, m2, m3);
        }

        /// <summary>
        /// output_j = Σ_p weights[j · count + p] · v_p for the N heads, two vectors of each head's output at a time held in
        /// registers while every value row passes (one load of a row serves all N heads).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void HeadSums<N>(float* weights, float* v, long stride, int d, int count, float* output)
            where N : IRowCount
        {
            float* w0 = weights, w1 = weights + count, w2 = weights + 2 * count, w3 = weights + 3 * count;
            var c = 0;
            for (; c + 2 * S.Count <= d; c += 2 * S.Count)
            {
                V a0 = S.Zero, b0 = S.Zero, a1 = S.Zero, b1 = S.Zero, a2 = S.Zero, b2 = S.Zero, a3 = S.Zero, b3 = S.Zero;
                var row = v + c;
                for (var p = 0; p < count; p++, row += stride)
                {
                    if (Sse.IsSupported) Sse.Prefetch0(row + AheadRows * stride);
                    V x = S.Load(row), y = S.Load(row + S.Count);
                    var w = S.Broadcast(w0[p]);
                    (a0, b0) = (S.MultiplyAdd(w, x, a0), S.MultiplyAdd(w, y, b0));
                    if (N.Value > 1)
                    {
                        w = S.Broadcast(w1[p]);
                        (a1, b1) = (S.MultiplyAdd(w, x, a1), S.MultiplyAdd(w, y, b1));
                    }

                    if (N.Value > 2)
                    {
                        w = S.Broadcast(w2[p]);
                        (a2, b2) = (S.MultiplyAdd(w, x, a2), S.MultiplyAdd(w, y, b2));
                    }

                    if (N.Value > 3)
                    {
                        w = S.Broadcast(w3[p]);
                        (a3, b3) = (S.MultiplyAdd(w, x, a3), S.MultiplyAdd(w, y, b3));
                    }
                }

                Store2(a0, b0, output + c);
                if (N.Value > 1) Store2(a1, b1, output + d + c);
                if (N.Value > 2) Store2(a2, b2, output + 2 * d + c);
                if (N.Value > 3) Store2(a3, b3, output + 3 * d + c);
            }

            // Head sizes that are not whole pairs of vectors: the rest one head at a time, in the same order.
            for (var j = 0; j < N.Value; j++)
            {
                var wj = weights + j * count;
                var oj = output + j * d;
                var e = c;
                for (; e + S.Count <= d; e += S.Count)
                {
                    var a = S.Zero;
                    var row = v + e;
                    for (var p = 0; p < count; p++, row += stride) a = S.MultiplyAdd(S.Broadcast(wj[p]), S.Load(row), a);
                    S.Store(a, oj + e);
                }

                for (; e < d; e++)
                {
                    var a = 0f;
                    for (var p = 0; p < count; p++) a = MathF.FusedMultiplyAdd(wj[p], v[p * stride + e], a);
                    oj[e] = a;
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Store2(V low, V high, float* destination)
        {
            S.Store(low, destination);
            S.Store(high, destination + S.Count);
        }

        /// <summary>
        /// scores[i] = exp(scores[i] − max) for the n scores; returns their sum. Vector exponentials: one scalar
        /// exponential per position cost more than the rest of a decode step's attention.
        /// </summary>
        private static float Softmax(float* scores, int n, float max)
        {
            var vmax = S.Broadcast(max);
            var sum = S.Zero;
            nint i = 0;
            for (; i + S.Count <= n; i += S.Count)
            {
                var e = SimdMath.Exp<S, V>(S.Subtract(S.Load(scores + i), vmax));
                S.Store(e, scores + i);
                sum = S.Add(sum, e);
            }

            var total = S.Sum(sum);
            for (; i < n; i++)
            {
                var e = MathF.Exp(scores[i] - max);
                scores[i] = e;
                total += e;
            }

            return total;
        }
    }
}
