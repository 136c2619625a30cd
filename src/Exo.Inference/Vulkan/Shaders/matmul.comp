#version 450
// y[n, rows] = x[n, cols] · W[rows, cols]ᵀ (+ bias[rows]) (+ y itself, the residual, where FLAG_ACCUMULATE is set), W of
// the type compiled in (weights.glsl). Compiled with -DGLU: y = silu(x · Wᵀ + bias) · (x · W2ᵀ + bias2), the gate and up
// projections of a feed-forward block in one pass.
// Launch: ceil(rows / ROWS) workgroups of G subgroups of S lanes (S the device's subgroup size, G·S set at pipeline
// creation as constant 1: ComputePipelines.MatVecSubgroups). A workgroup computes ROWS output rows for NB activation rows at a time, so a decode batch
// reads each weight once; compiled with -DSINGLE_ROW, NB is 1 (the decode of one sequence) and each chunk of x is read
// once for the ROWS rows. Invocation i of the workgroup sums the 32-value chunks i, i + G·S, ... of a row in order, so
// neighbouring invocations read neighbouring blocks of a row; each subgroup adds its lanes' sums and the first
// invocations add the G subgroups' sums in order. Each output's arithmetic depends only on its own input row, never on
// n or the variant, so a sequence decodes to the same bits alone or in a batch.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"
#include "weights.glsl"

layout(local_size_x_id = 1) in;
layout(constant_id = 1) const uint GROUP = 128u; // G·S invocations
const uint MAX_G = 8u; // ComputePipelines.MaxMatVecSubgroups

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

const uint ROWS = 4u; // VulkanKernels.MatVecRows
// One activation row needs no room for eight: fewer registers, more workgroups resident (the decode of one sequence).
#if defined(SINGLE_ROW)
const uint NB = 1u;
#else
const uint NB = 8u;
#endif
#if defined(GLU)
const uint MATS = 2u;
#else
const uint MATS = 1u;
#endif
// Matrix m's row r of activation row b accumulates in acc[(b · MATS + m) · ROWS + r].
const uint SUMS = NB * MATS * ROWS;
shared float partial[MAX_G][SUMS];

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

void main()
{
    uint row0 = groupIndex() * ROWS;
    if (row0 >= p.rows) return;
    uint i = gl_LocalInvocationIndex;
    uint chunks = p.cols / 32u;
    for (uint b0 = 0u; b0 < p.n; b0 += NB)
    {
        uint nb = min(NB, p.n - b0);
        float acc[SUMS];
        [[unroll]] for (uint s = 0u; s < SUMS; s++) acc[s] = 0.0;
        // Constant-length loops with the tails masked keep acc in registers. One activation row: its chunk of x is read
        // once for all rows. A batch: each weight chunk is dequantized once for all NB activation rows.
        for (uint c = i; c < chunks; c += GROUP)
        {
#if defined(SINGLE_ROW)
            vec4 xv[8];
            [[unroll]] for (uint k = 0u; k < 8u; k++) xv[k] = p.x.v[(b0 * p.cols + c * 32u) / 4u + k];
#endif
            [[unroll]] for (uint m = 0u; m < MATS; m++)
            {
                [[unroll]] for (uint r = 0u; r < ROWS; r++)
                {
                    if (row0 + r < p.rows)
                    {
                        float v[32];
                        chunkOf(m, row0 + r, c, v);
#if defined(SINGLE_ROW)
                        acc[m * ROWS + r] += dot32(v, xv);
#else
                        [[unroll]] for (uint b = 0u; b < NB; b++)
                        {
                            if (b < nb)
                            {
                                vec4 xb[8];
                                [[unroll]] for (uint k = 0u; k < 8u; k++) xb[k] = p.x.v[((b0 + b) * p.cols + c * 32u) / 4u + k];
                                acc[(b * MATS + m) * ROWS + r] += dot32(v, xb);
                            }
                        }
#endif
                    }
                }
            }
        }

        [[unroll]] for (uint s = 0u; s < SUMS; s++)
        {
            float sum = subgroupAdd(acc[s]);
            if (subgroupElect()) partial[gl_SubgroupID][s] = sum;
        }
        barrier();
        // A CPU implementation's workgroup may have fewer invocations than outputs (one subgroup of 8 lanes).
        for (uint o = i; o < nb * ROWS; o += GROUP)
        {
            uint b = o / ROWS, r = o % ROWS, row = row0 + r;
            if (row < p.rows)
            {
                float total[MATS];
                [[unroll]] for (uint m = 0u; m < MATS; m++)
                {
                    total[m] = 0.0;
                    for (uint g = 0u; g < gl_NumSubgroups; g++) total[m] += partial[g][(b * MATS + m) * ROWS + r];
                }
                uint at = (b0 + b) * p.rows + row;
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
        }
        barrier(); // partial is written again by the next NB activation rows
    }
}
