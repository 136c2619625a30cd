#version 450
// gate[i] = silu(gate[i]) · up[i] over count values.
// Launch: ceil(count / 256) workgroups of 256 threads.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

layout(push_constant) uniform Push
{
    Floats gate;    // [count]
    Floats up;      // [count]
    uint count;
} p;

void main()
{
    uint i = groupIndex() * 256u + gl_LocalInvocationID.x;
    if (i >= p.count) return;
    float g = p.gate.v[i];
    p.gate.v[i] = g / (1.0 + exp(-g)) * p.up.v[i];
}
