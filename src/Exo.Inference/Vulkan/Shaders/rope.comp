#version 450
// Rotates x[n, heads, headDim] into y (x itself, or a KV cache's rows) by the angles of each row's position: pairs (i, i + headDim/2), the "rotate
// half" layout of Hugging Face checkpoints; cos and sin [n, headDim/2] come from the host's RotaryEmbedding, so every
// rope type the CPU engine knows is computed once, there.
// Launch: ceil(n · heads · headDim/2 / 128) workgroups of 128 threads, one pair each.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 128) in;

layout(push_constant) uniform Push
{
    Floats x;       // [n, heads * headDim]
    Floats y;       // [n, heads * headDim]
    Floats cos;     // [n, headDim / 2]
    Floats sin;     // [n, headDim / 2]
    uint n;
    uint heads;
    uint headDim;
} p;

void main()
{
    uint half_ = p.headDim / 2u;
    uint i = groupIndex() * 128u + gl_LocalInvocationID.x;
    if (i >= p.n * p.heads * half_) return;
    uint j = i % half_, head = (i / half_) % p.heads, row = i / (half_ * p.heads);
    uint at = row * p.heads * p.headDim + head * p.headDim + j;
    float c = p.cos.v[row * half_ + j], s = p.sin.v[row * half_ + j];
    float a = p.x.v[at], b = p.x.v[at + half_];
    p.y.v[at] = a * c - b * s;
    p.y.v[at + half_] = b * c + a * s;
}
