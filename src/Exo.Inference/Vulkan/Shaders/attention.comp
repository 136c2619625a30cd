#version 450
// Causal attention of one sequence's new rows over its KV cache, for one layer, in two passes ("flash decoding"):
// this pass scores one span of SPAN positions per workgroup, so that a single decoded row still spreads over many
// workgroups; attention_merge.comp combines the spans.
//   out[i, h, :] = softmax_p(q[i, h, :] · k[p, h / group, :] / sqrt(headDim)) · v[p, h / group, :]
// over positions p in [start, first + i], start = first + i − window + 1 when a sliding window is set, else 0.
// Launch: (count · heads) × spans workgroups of 256 threads: SUBGROUPS subgroups of S lanes. Workgroup (g, s) takes
// positions [s · SPAN, (s + 1) · SPAN) of row g / heads, head g % heads; subgroup k takes the k-th tile of S positions
// of the span, its maximum and sum. Lane t holds dimensions t, t + S, ... of q and of the output (headDim ≤ 256): the
// subgroup scores the tile's keys one after another, each lane reading its dimensions of the key (neighbouring lanes,
// neighbouring words) and subgroupAdd giving the score, which lane j of the tile keeps for position j. The subgroups' results are then folded into one, in subgroup order, in
// shared memory, and written as the span's partial result [max, sum, acc[headDim]] to partials[g, s]. Spans and
// tiles are fixed in absolute positions, so a row's arithmetic is the same however the sequence was batched.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint S = 32u;  // the subgroup size, as every kernel is given it

layout(push_constant) uniform Push
{
    Floats q;        // [count, heads * headDim]
    Floats keys;     // [capacity, kvHeads * headDim], this layer's
    Floats values;   // [capacity, kvHeads * headDim]
    Floats partials; // [count * heads, spans, headDim + 2]
    uint count;
    uint first;
    uint heads;
    uint kvHeads;
    uint headDim;
    uint window;
    uint spans;
} p;

const uint SPAN = 256u;
const uint SUBGROUPS = 256u / S;
const uint MAX_DIMS = 256u / S; // headDim ≤ 256 over S lanes

shared float foldMax, foldSum;
shared float foldAcc[256];

void main()
{
    uint g = groupIndex() / p.spans, span = groupIndex() % p.spans;
    if (g >= p.count * p.heads) return;
    uint t = gl_SubgroupInvocationID, lanes = S, sg = gl_SubgroupID;
    uint i = g / p.heads, h = g % p.heads;
    uint kvDim = p.kvHeads * p.headDim;
    uint kvOffset = h / (p.heads / p.kvHeads) * p.headDim;
    uint qAt = (i * p.heads + h) * p.headDim;
    uint dims = (p.headDim + lanes - 1u) / lanes;

    uint position = p.first + i;
    uint start = max(p.window > 0u && position + 1u > p.window ? position + 1u - p.window : 0u, span * SPAN);
    uint end = min(position + 1u, (span + 1u) * SPAN); // exclusive
    float scale = inversesqrt(float(p.headDim));
    float runningMax = -1.0 / 0.0, runningSum = 0.0;
    float acc[MAX_DIMS], qv[MAX_DIMS];
    [[unroll]] for (uint d = 0u; d < MAX_DIMS; d++)
    {
        acc[d] = 0.0;
        qv[d] = d < dims && d * lanes + t < p.headDim ? p.q.v[qAt + d * lanes + t] : 0.0;
    }
    // This subgroup's tile of the span, [tile, tile + S); only positions in [start, end) count.
    uint tile = span * SPAN + sg * lanes;
    if (tile + lanes > start && tile < end)
    {
        uint pos = tile + t;
        bool counts = pos >= start && pos < end;
        float score = -1.0 / 0.0;
        for (uint j = max(start, tile) - tile; j < min(lanes, end - tile); j++)
        {
            uint kAt = (tile + j) * kvDim + kvOffset;
            float part = 0.0;
            [[unroll]] for (uint d = 0u; d < MAX_DIMS; d++)
            {
                if (d < dims && d * lanes + t < p.headDim) part = fma(qv[d], p.keys.v[kAt + d * lanes + t], part);
            }
            float dot = subgroupAdd(part);
            if (t == j) score = dot * scale;
        }

        runningMax = subgroupMax(score);
        float e = counts ? exp(score - runningMax) : 0.0;
        runningSum = subgroupAdd(e);
        for (uint j = max(start, tile) - tile; j < min(lanes, end - tile); j++)
        {
            float weight = subgroupShuffle(e, j);
            uint vAt = (tile + j) * kvDim + kvOffset;
            [[unroll]] for (uint d = 0u; d < MAX_DIMS; d++)
            {
                if (d < dims && d * lanes + t < p.headDim) acc[d] = fma(weight, p.values.v[vAt + d * lanes + t], acc[d]);
            }
        }
    }

    // Fold the subgroups' results in subgroup order. A subgroup with no positions has max −∞ and sum 0, and an empty
    // span leaves max −∞ and sum 0 in its partial.
    for (uint k = 0u; k < SUBGROUPS; k++)
    {
        if (sg == k)
        {
            float top = k == 0u ? runningMax : max(foldMax, runningMax);
            float mine = runningMax == top ? 1.0 : exp(runningMax - top);
            float theirs = k == 0u || foldMax == top ? 1.0 : exp(foldMax - top);
            [[unroll]] for (uint d = 0u; d < MAX_DIMS; d++)
            {
                uint dim = d * lanes + t;
                if (d < dims && dim < p.headDim) foldAcc[dim] = k == 0u ? acc[d] : foldAcc[dim] * theirs + acc[d] * mine;
            }
            subgroupBarrier();
            if (t == 0u)
            {
                foldSum = k == 0u ? runningSum : foldSum * theirs + runningSum * mine;
                foldMax = top;
            }
        }
        barrier();
    }

    uint at = (g * p.spans + span) * (p.headDim + 2u);
    if (gl_LocalInvocationIndex == 0u)
    {
        p.partials.v[at] = foldMax;
        p.partials.v[at + 1u] = foldSum;
    }
    for (uint dim = gl_LocalInvocationIndex; dim < p.headDim; dim += 256u) p.partials.v[at + 2u + dim] = foldAcc[dim];
}
