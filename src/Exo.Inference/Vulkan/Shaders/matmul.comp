#version 450
// y[n, rows] = x[n, cols] · W[rows, cols]ᵀ (+ bias[rows]) (+ y itself, the residual, where FLAG_ACCUMULATE is set), W of
// the type compiled in (weights.glsl). Compiled with -DGLU: y = silu(x · Wᵀ + bias) · (x · W2ᵀ + bias2), the gate and up
// projections of a feed-forward block in one pass.
// Shapes: cols a multiple of 32 (of 256 for the K types); n below VulkanKernels.TiledRows.
// Launch: workgroups of G subgroups of S lanes (S the device's subgroup size, constant 0; G·S constant 1, G =
// MatVecLayout.Subgroups: 4 on a GPU, 1 on a CPU implementation).
//   -DSINGLE_ROW (one sequence's decode): ceil(rows / RS) workgroups; every subgroup takes the workgroup's RS rows.
//   otherwise (a decode batch): ceil(rows / (G·RS)) workgroups; subgroup s takes rows s·RS .. of the workgroup's G·RS,
//   NB activation rows at a time, so that each weight is read once per NB sequences.
// The sum: a row's 32-value chunks are dealt to G·S virtual lanes, lane v = g·S + t summing chunks v, v + G·S, ... in
// order; the S lanes of virtual subgroup g are added by subgroupAdd in lane t, and the G subgroup sums in order of g.
// Where one sequence has its subgroup g be virtual subgroup g, a batch has each subgroup go through every virtual
// subgroup for its own rows: the arithmetic of an output is the same either way, so a sequence decodes to the same bits
// alone or in a batch. A batch's subgroups share the activations' chunks of each step, staged once in shared memory.
// With G = 1 no shared memory and no barrier is used (a CPU implementation compiles barriers into coroutines, slowly).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"
#include "weights.glsl"

layout(local_size_x_id = 1) in;
layout(constant_id = 0) const uint S = 32u;
layout(constant_id = 1) const uint GROUP = 128u;
const uint G = GROUP / S;
const bool SPLIT = GROUP > S; // several subgroups: sums meet in shared memory

layout(push_constant) uniform Push
{
    Vec4s x;        // [n, cols / 4]
    Quads w;        // weight values (see weights.glsl)
    Words scales;   // weight scales, where the type has them apart
    Floats bias;    // [rows], read with FLAG_BIAS
    Floats y;       // [n, rows]
    Quads w2;       // GLU only: the up projection, of W's type and shape
    Words scales2;
    Floats bias2;   // [rows], read with FLAG_BIAS2
    uint n;
    uint rows;
    uint cols;
    uint flags;
} p;

const uint FLAG_BIAS = 1u, FLAG_ACCUMULATE = 2u, FLAG_BIAS2 = 4u; // VulkanKernels.MatMulFlags

#if defined(GLU)
const uint MATS = 2u;
#else
const uint MATS = 1u;
#endif
// RS: rows a subgroup computes (VulkanKernels.MatVecRows, .BatchRows). NB: activation rows a pass; one needs no room for
// eight, and a batch keeps fewer rows a subgroup: fewer registers, more workgroups resident.
#if defined(SINGLE_ROW)
const uint NB = 1u, RS = 4u;
const uint OWNERS = 1u; // subgroups whose rows differ
#else
layout(constant_id = 3) const uint NB = 8u; // MatVecLayout.BatchPass: 8 on a GPU, 2 on a CPU implementation
const uint RS = 2u;
const uint OWNERS = G;
#endif
// Activation b's sum for matrix m, row r accumulates in acc[(b · MATS + m) · RS + r].
const uint SUMS = NB * MATS * RS;
// Virtual subgroup g's sums of owner o's rows: partial[(g · OWNERS + o) · SUMS + s].
shared float partial[G * OWNERS * SUMS];
#if !defined(SINGLE_ROW)
// A batch's step: the chunks of XS virtual lanes for NB activation rows, [b][k][lane] (k the vec4 of the chunk), so that
// neighbouring lanes read neighbouring words. XS (constant 2, MatVecLayout.StagedLanes) divides S: as many lanes as
// the device's shared memory holds, at most 32 (32 KiB); a subgroup takes S / XS steps.
layout(constant_id = 2) const uint XS = 32u;
shared vec4 xs[SPLIT ? NB * 8u * XS : 1u];
#endif

// v · x over one chunk of 32 values, in a fixed order: the same sum whichever kernel variant computes it. Four chains
// of eight products, not one of 32: shorter dependency chains, and less rounding.
float dot32(float v[32], vec4 xv[8])
{
    vec4 s = vec4(0.0);
    [[unroll]] for (uint k = 0u; k < 8u; k++)
    {
        s.x = fma(v[k * 4u], xv[k].x, s.x);
        s.y = fma(v[k * 4u + 1u], xv[k].y, s.y);
        s.z = fma(v[k * 4u + 2u], xv[k].z, s.z);
        s.w = fma(v[k * 4u + 3u], xv[k].w, s.w);
    }
    return (s.x + s.y) + (s.z + s.w);
}

void chunkOf(uint m, uint row, uint c, out float v[32])
{
#if defined(GLU)
    if (m == 1u)
    {
        dequantChunk(p.w2, p.scales2, p.cols, row, c, v);
        return;
    }
#endif
    dequantChunk(p.w, p.scales, p.cols, row, c, v);
}

// Activation row b's chunk c, from memory.
void xChunk(uint b, uint c, out vec4 xv[8])
{
    [[unroll]] for (uint k = 0u; k < 8u; k++) xv[k] = p.x.v[(b * p.cols + c * 32u) / 4u + k];
}

void store(uint b, uint row, float total[MATS])
{
    uint at = b * p.rows + row;
    float out_ = total[0];
    if ((p.flags & FLAG_BIAS) != 0u) out_ += p.bias.v[row];
#if defined(GLU)
    float up = total[1];
    if ((p.flags & FLAG_BIAS2) != 0u) up += p.bias2.v[row];
    out_ = out_ / (1.0 + exp(-out_)) * up;
#endif
    if ((p.flags & FLAG_ACCUMULATE) != 0u) out_ = p.y.v[at] + out_;
    p.y.v[at] = out_;
}

void main()
{
    uint sg = gl_SubgroupID, t = gl_SubgroupInvocationID;
#if defined(SINGLE_ROW)
    uint first = groupIndex() * RS, rowBase = first, owner = 0u, vgFirst = sg, vgCount = 1u;
#else
    uint first = groupIndex() * G * RS, rowBase = first + sg * RS, owner = sg, vgFirst = 0u, vgCount = G;
#endif
    if (first >= p.rows) return; // the whole workgroup: none of it reaches a barrier
    uint chunks = p.cols / 32u;
    for (uint b0 = 0u; b0 < p.n; b0 += NB)
    {
        uint nb = min(NB, p.n - b0);
        float acc[SUMS];
        for (uint vg = vgFirst; vg < vgFirst + vgCount; vg++)
        {
            [[unroll]] for (uint s = 0u; s < SUMS; s++) acc[s] = 0.0;
            // Constant-length loops with the tails masked keep acc in registers.
            for (uint base = vg * S; base < chunks; base += GROUP)
            {
#if defined(SINGLE_ROW)
                uint c = base + t;
                if (c < chunks)
                {
                    // One activation row: its chunk is read once for all rows.
                    vec4 xv[8];
                    xChunk(b0, c, xv);
                    [[unroll]] for (uint m = 0u; m < MATS; m++)
                    {
                        [[unroll]] for (uint r = 0u; r < RS; r++)
                        {
                            if (rowBase + r < p.rows)
                            {
                                float v[32];
                                chunkOf(m, rowBase + r, c, v);
                                acc[m * RS + r] += dot32(v, xv);
                            }
                        }
                    }
                }
#else
                for (uint h = 0u; h < S; h += XS)
                {
                    if (SPLIT)
                    {
                        barrier(); // the previous step's chunks are read
                        for (uint e = gl_LocalInvocationIndex; e < nb * 8u * XS; e += GROUP)
                        {
                            uint b = e / (8u * XS), lane = (e / 8u) % XS, k = e % 8u, c = base + h + lane;
                            xs[(b * 8u + k) * XS + lane] = c < chunks ? p.x.v[((b0 + b) * p.cols + c * 32u) / 4u + k] : vec4(0.0);
                        }
                        barrier();
                    }

                    uint c = base + t;
                    if (t >= h && t < h + XS && c < chunks)
                    {
                        // A batch: each weight chunk is dequantized once for all NB activation rows.
                        [[unroll]] for (uint m = 0u; m < MATS; m++)
                        {
                            [[unroll]] for (uint r = 0u; r < RS; r++)
                            {
                                if (rowBase + r < p.rows)
                                {
                                    float v[32];
                                    chunkOf(m, rowBase + r, c, v);
                                    [[unroll]] for (uint b = 0u; b < NB; b++)
                                    {
                                        if (b < nb)
                                        {
                                            vec4 xv[8];
                                            if (SPLIT) [[unroll]] for (uint k = 0u; k < 8u; k++) xv[k] = xs[(b * 8u + k) * XS + t - h];
                                            else xChunk(b0 + b, c, xv);
                                            acc[(b * MATS + m) * RS + r] += dot32(v, xv);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
#endif
            }

            [[unroll]] for (uint s = 0u; s < SUMS; s++)
            {
                acc[s] = subgroupAdd(acc[s]);
                if (SPLIT && subgroupElect()) partial[(vg * OWNERS + owner) * SUMS + s] = acc[s];
            }
        }

        if (SPLIT)
        {
            // Outputs spread over the workgroup; each adds the G virtual subgroups' sums in order.
            barrier();
            for (uint o = gl_LocalInvocationIndex; o < nb * OWNERS * RS; o += GROUP)
            {
                uint b = o / (OWNERS * RS), who = o / RS % OWNERS, r = o % RS, row = first + who * RS + r;
                if (row < p.rows)
                {
                    float total[MATS];
                    [[unroll]] for (uint m = 0u; m < MATS; m++)
                    {
                        total[m] = 0.0;
                        for (uint g = 0u; g < G; g++) total[m] += partial[(g * OWNERS + who) * SUMS + (b * MATS + m) * RS + r];
                    }
                    store(b0 + b, row, total);
                }
            }
            barrier(); // partial is written again by the next NB activation rows
        }
        else if (subgroupElect())
        {
            // One subgroup: its sums are the totals.
            [[unroll]] for (uint b = 0u; b < NB; b++)
            {
                [[unroll]] for (uint r = 0u; r < RS; r++)
                {
                    if (b < nb && rowBase + r < p.rows)
                    {
                        float total[MATS];
                        [[unroll]] for (uint m = 0u; m < MATS; m++) total[m] = acc[(b * MATS + m) * RS + r];
                        store(b0 + b, rowBase + r, total);
                    }
                }
            }
        }
    }
}
