#version 450
// The second pass of attention.comp: out[g, :] = Σ_s e^(max_s − M) acc_s / Σ_s e^(max_s − M) sum_s, M = max_s max_s,
// over the spans s of row-head g in order.
// Launch: ceil(count · heads · headDim / 128) workgroups of 128 threads, one output value each.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 128) in;

layout(push_constant) uniform Push
{
    Floats partials; // [count * heads, spans, headDim + 2]
    Floats out_;     // [count, heads * headDim]
    uint rowHeads;   // count * heads
    uint headDim;
    uint spans;
} p;

void main()
{
    uint k = groupIndex() * 128u + gl_LocalInvocationID.x;
    if (k >= p.rowHeads * p.headDim) return;
    uint g = k / p.headDim, d = k % p.headDim;
    uint stride = p.headDim + 2u, base = g * p.spans * stride;
    float top = -1.0 / 0.0;
    for (uint s = 0u; s < p.spans; s++) top = max(top, p.partials.v[base + s * stride]);
    float sum = 0.0, value = 0.0;
    for (uint s = 0u; s < p.spans; s++)
    {
        float m = p.partials.v[base + s * stride];
        if (m == -1.0 / 0.0) continue;
        float w = exp(m - top);
        sum = fma(w, p.partials.v[base + s * stride + 1u], sum);
        value = fma(w, p.partials.v[base + s * stride + 2u + d], value);
    }
    p.out_.v[k] = value / sum;
}
