#version 450
// y[n, width] = x / sqrt(mean(x²) + eps) · weight[width], row by row; y may be x (in place).
// Launch: n workgroups of one subgroup (S lanes), one row each; the subgroup adds the lanes' sums of squares.
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push
{
    Floats x;       // [n, width]
    Floats weight;  // [width]
    Floats y;       // [n, width]
    uint n;
    uint width;
    float eps;
} p;

void main()
{
    uint row = groupIndex();
    if (row >= p.n) return;
    uint t = gl_SubgroupInvocationID, lanes = gl_SubgroupSize;
    uint at = row * p.width;
    float s = 0.0;
    for (uint i = t; i < p.width; i += lanes) s = fma(p.x.v[at + i], p.x.v[at + i], s);
    float scale = inversesqrt(subgroupAdd(s) / float(p.width) + p.eps);
    for (uint i = t; i < p.width; i += lanes) p.y.v[at + i] = p.x.v[at + i] * scale * p.weight.v[i];
}
