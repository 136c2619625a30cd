#version 450
// y[n, width] = x / sqrt(mean(x²) + eps) · weight[width], row by row; y may be x (in place).
// Launch: n workgroups of 256 threads (SUBGROUPS subgroups of S lanes), one row each: each subgroup adds its lanes'
// sums of squares, and the subgroups' sums are added in subgroup order, so a row's result does not depend on n.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint S = 32u;  // the subgroup size, as every kernel is given it

layout(push_constant) uniform Push
{
    Floats x;       // [n, width]
    Floats weight;  // [width]
    Floats y;       // [n, width]
    uint n;
    uint width;
    float eps;
} p;

const uint SUBGROUPS = 256u / S;

shared float sums[SUBGROUPS];
shared float scale;

void main()
{
    uint row = groupIndex();
    if (row >= p.n) return;
    uint at = row * p.width;
    float s = 0.0;
    for (uint i = gl_LocalInvocationIndex; i < p.width; i += 256u) s = fma(p.x.v[at + i], p.x.v[at + i], s);
    s = subgroupAdd(s);
    if (subgroupElect() && gl_SubgroupID < SUBGROUPS) sums[gl_SubgroupID] = s;
    barrier();
    if (gl_LocalInvocationIndex == 0u)
    {
        float total = 0.0;
        for (uint k = 0u; k < SUBGROUPS; k++) total += sums[k];
        scale = inversesqrt(total / float(p.width) + p.eps);
    }
    barrier();
    for (uint i = gl_LocalInvocationIndex; i < p.width; i += 256u) p.y.v[at + i] = p.x.v[at + i] * scale * p.weight.v[i];
}
