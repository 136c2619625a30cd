#version 450
// x[i] += y[i] over count values: the residual connection.
// Launch: ceil(count / 256) workgroups of 256 threads.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

layout(push_constant) uniform Push
{
    Floats x;       // [count]
    Floats y;       // [count]
    uint count;
} p;

void main()
{
    uint i = groupIndex() * 256u + gl_LocalInvocationID.x;
    if (i >= p.count) return;
    p.x.v[i] += p.y.v[i];
}
