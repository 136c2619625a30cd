#version 450
// Causal attention of one sequence's new rows over its KV cache, for one layer, in two passes ("flash decoding"):
// this pass scores one span of SPAN positions per workgroup, so that a single decoded row still spreads over many
// workgroups; attention_merge.comp combines the spans.
//   out[i, h, :] = softmax_p(q[i, h, :] · k[p, h / group, :] / sqrt(headDim)) · v[p, h / group, :]
// over positions p in [start, first + i], start = first + i − window + 1 when a sliding window is set, else 0.
// Launch: (count · heads) × spans workgroups of one subgroup (S lanes); workgroup (g, s) takes positions
// [s · SPAN, (s + 1) · SPAN) of row g / heads, head g % heads, in tiles of S (one position per lane) with a running
// maximum and sum; lane t keeps output dimensions t, t + S, ... (headDim ≤ 256). It writes its partial result
// [max, sum, acc[headDim]] to partials[g, s]. Spans are fixed in absolute positions, so a row's arithmetic is the same
// however the sequence was batched. No shared memory and no barriers: lanes exchange weights by subgroup shuffles.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

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
const uint MAX_DIMS = 32u; // 256 / the smallest subgroup (8)

void main()
{
    uint g = groupIndex() / p.spans, span = groupIndex() % p.spans;
    if (g >= p.count * p.heads) return;
    uint t = gl_SubgroupInvocationID, lanes = gl_SubgroupSize;
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
    float acc[MAX_DIMS];
    [[unroll]] for (uint d = 0u; d < MAX_DIMS; d++) acc[d] = 0.0;
    for (uint tile = start; tile < end; tile += lanes)
    {
        uint pos = tile + t;
        float score = -1.0 / 0.0;
        if (pos < end)
        {
            uint kAt = pos * kvDim + kvOffset;
            float dot = 0.0;
            for (uint d = 0u; d < p.headDim; d++) dot = fma(p.q.v[qAt + d], p.keys.v[kAt + d], dot);
            score = dot * scale;
        }

        float newMax = max(runningMax, subgroupMax(score));
        float e = pos < end ? exp(score - newMax) : 0.0;
        float alpha = exp(runningMax - newMax);
        runningSum = runningSum * alpha + subgroupAdd(e);
        runningMax = newMax;
        uint last = min(lanes, end - tile);
        [[unroll]] for (uint d = 0u; d < MAX_DIMS; d++) acc[d] *= alpha;
        for (uint j = 0u; j < last; j++)
        {
            float weight = subgroupShuffle(e, j);
            uint vAt = (tile + j) * kvDim + kvOffset;
            [[unroll]] for (uint d = 0u; d < MAX_DIMS; d++)
            {
                if (d < dims && d * lanes + t < p.headDim) acc[d] = fma(weight, p.values.v[vAt + d * lanes + t], acc[d]);
            }
        }
    }

    // An empty span (all of it after the row's position or before its window) leaves max −∞ and sum 0.
    uint at = (g * p.spans + span) * (p.headDim + 2u);
    if (t == 0u)
    {
        p.partials.v[at] = runningMax;
        p.partials.v[at + 1u] = runningSum;
    }
    [[unroll]] for (uint d = 0u; d < MAX_DIMS; d++)
    {
        if (d < dims && d * lanes + t < p.headDim) p.partials.v[at + 2u + d * lanes + t] = acc[d];
    }
}
