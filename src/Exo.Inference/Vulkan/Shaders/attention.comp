#version 450
// Causal attention of one sequence's new rows over its KV cache, for one layer:
//   out[i, h, :] = softmax_p(q[i, h, :] · k[p, h / group, :] / sqrt(headDim)) · v[p, h / group, :]
// over positions p in [start, first + i], start = first + i − window + 1 when a sliding window is set, else 0.
// Launch: count · heads workgroups of one subgroup (S lanes), one (row, head) each. Positions go in tiles of S, one per
// lane, with a running maximum and sum (online softmax); lane t keeps output dimensions t, t + S, ... (headDim ≤ 256,
// so at most 256 / S of them). No shared memory and no barriers: lanes exchange weights by subgroup shuffles.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push
{
    Floats q;       // [count, heads * headDim]
    Floats keys;    // [capacity, kvHeads * headDim], this layer's
    Floats values;  // [capacity, kvHeads * headDim]
    Floats out_;    // [count, heads * headDim]
    uint count;
    uint first;
    uint heads;
    uint kvHeads;
    uint headDim;
    uint window;
} p;

const uint MAX_DIMS = 32u; // 256 / the smallest subgroup (8)

void main()
{
    uint g = groupIndex();
    if (g >= p.count * p.heads) return;
    uint t = gl_SubgroupInvocationID, lanes = gl_SubgroupSize;
    uint i = g / p.heads, h = g % p.heads;
    uint kvDim = p.kvHeads * p.headDim;
    uint kvOffset = h / (p.heads / p.kvHeads) * p.headDim;
    uint qAt = (i * p.heads + h) * p.headDim;
    uint dims = (p.headDim + lanes - 1u) / lanes;

    uint position = p.first + i;
    uint start = p.window > 0u && position + 1u > p.window ? position + 1u - p.window : 0u;
    float scale = inversesqrt(float(p.headDim));
    float runningMax = -1.0 / 0.0, runningSum = 0.0;
    float acc[MAX_DIMS];
    [[unroll]] for (uint d = 0u; d < MAX_DIMS; d++) acc[d] = 0.0;
    for (uint tile = start; tile <= position; tile += lanes)
    {
        uint pos = tile + t;
        float score = -1.0 / 0.0;
        if (pos <= position)
        {
            uint kAt = pos * kvDim + kvOffset;
            float dot = 0.0;
            for (uint d = 0u; d < p.headDim; d++) dot = fma(p.q.v[qAt + d], p.keys.v[kAt + d], dot);
            score = dot * scale;
        }

        float newMax = max(runningMax, subgroupMax(score));
        float e = pos <= position ? exp(score - newMax) : 0.0;
        float alpha = exp(runningMax - newMax);
        runningSum = runningSum * alpha + subgroupAdd(e);
        runningMax = newMax;
        uint last = min(lanes - 1u, position - tile);
        [[unroll]] for (uint d = 0u; d < MAX_DIMS; d++) acc[d] *= alpha;
        for (uint j = 0u; j <= last; j++)
        {
            float weight = subgroupShuffle(e, j);
            uint vAt = (tile + j) * kvDim + kvOffset;
            [[unroll]] for (uint d = 0u; d < MAX_DIMS; d++)
            {
                if (d < dims && d * lanes + t < p.headDim) acc[d] = fma(weight, p.values.v[vAt + d * lanes + t], acc[d]);
            }
        }
    }

    uint oAt = (i * p.heads + h) * p.headDim;
    [[unroll]] for (uint d = 0u; d < MAX_DIMS; d++)
    {
        if (d < dims && d * lanes + t < p.headDim) p.out_.v[oAt + d * lanes + t] = acc[d] / runningSum;
    }
}
