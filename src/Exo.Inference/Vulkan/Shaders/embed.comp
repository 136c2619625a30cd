#version 450
// y[n, cols] = rows tokens[0..n) of the embedding table [vocab, cols], dequantized.
// Launch: n workgroups of S threads (the subgroup size); thread t writes the 32-value chunks t, t + S, ... of its token's row.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#include "weights.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push
{
    Ints tokens;    // [n], already checked against the vocabulary
    Quads w;        // [vocab, cols]
    Words scales;
    Floats y;       // [n, cols]
    uint n;
    uint cols;
} p;

void main()
{
    uint i = groupIndex();
    if (i >= p.n) return;
    uint row = uint(p.tokens.v[i]);
    for (uint c = gl_LocalInvocationID.x; c < p.cols / 32u; c += gl_WorkGroupSize.x)
    {
        float v[32];
        dequantChunk(p.w, p.scales, p.cols, row, c, v);
        for (uint k = 0u; k < 32u; k++) p.y.v[i * p.cols + c * 32u + k] = v[k];
    }
}
