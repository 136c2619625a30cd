#version 450
// y[n, rows] = x[n, cols] · W[rows, cols]ᵀ (+ bias[rows]), W of the type compiled in (weights.glsl).
// Launch: ceil(rows / ROWS) workgroups of one subgroup each (S lanes, the device's subgroup size, set at pipeline
// creation). A workgroup computes ROWS output rows for NB activation rows at a time, so a decode batch reads each weight
// once; compiled with -DSINGLE_ROW, NB is 1 (the decode of one sequence) and each chunk of x is read once for the ROWS
// rows. Lane t sums the 32-value chunks t, t + S, ... of a row in order and the subgroup adds the lanes' sums: each
// output's arithmetic depends only on its own input row, never on n or the variant. No shared memory and no barriers:
// a workgroup is one subgroup.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"
#include "weights.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push
{
    Vec4s x;        // [n, cols / 4]
    Quads w;        // weight values (see weights.glsl)
    Words scales;   // weight scales, where the type has them apart
    Floats bias;    // [rows], read when hasBias != 0
    Floats y;       // [n, rows]
    uint n;
    uint rows;
    uint cols;
    uint hasBias;
} p;

const uint ROWS = 4u; // VulkanKernels.MatVecRows
// One activation row needs no room for eight: fewer registers, more workgroups resident (the decode of one sequence).
#if defined(SINGLE_ROW)
const uint NB = 1u;
#else
const uint NB = 8u;
#endif

// v · x over one chunk of 32 values, in a fixed order: the same sum whichever kernel variant computes it.
float dot32(float v[32], vec4 xv[8])
{
    float s = 0.0;
    [[unroll]] for (uint k = 0u; k < 8u; k++)
    {
        s = fma(v[k * 4u], xv[k].x, s);
        s = fma(v[k * 4u + 1u], xv[k].y, s);
        s = fma(v[k * 4u + 2u], xv[k].z, s);
        s = fma(v[k * 4u + 3u], xv[k].w, s);
    }
    return s;
}

void main()
{
    uint row0 = groupIndex() * ROWS;
    if (row0 >= p.rows) return;
    uint t = gl_SubgroupInvocationID, lanes = gl_SubgroupSize;
    uint chunks = p.cols / 32u;
    for (uint b0 = 0u; b0 < p.n; b0 += NB)
    {
        uint nb = min(NB, p.n - b0);
        float acc[NB * ROWS];
        [[unroll]] for (uint i = 0u; i < NB * ROWS; i++) acc[i] = 0.0;
        // Constant-length loops with the tails masked keep acc in registers. One activation row: its chunk of x is read
        // once for all ROWS weight rows. A batch: each weight chunk is dequantized once for all NB activation rows.
        for (uint c = t; c < chunks; c += lanes)
        {
#if defined(SINGLE_ROW)
            vec4 xv[8];
            [[unroll]] for (uint k = 0u; k < 8u; k++) xv[k] = p.x.v[(b0 * p.cols + c * 32u) / 4u + k];
            [[unroll]] for (uint r = 0u; r < ROWS; r++)
            {
                if (row0 + r < p.rows)
                {
                    float v[32];
                    dequantChunk(p.w, p.scales, p.cols, row0 + r, c, v);
                    acc[r] += dot32(v, xv);
                }
            }
#else
            [[unroll]] for (uint r = 0u; r < ROWS; r++)
            {
                if (row0 + r < p.rows)
                {
                    float v[32];
                    dequantChunk(p.w, p.scales, p.cols, row0 + r, c, v);
                    [[unroll]] for (uint b = 0u; b < NB; b++)
                    {
                        if (b < nb)
                        {
                            vec4 xv[8];
                            [[unroll]] for (uint k = 0u; k < 8u; k++) xv[k] = p.x.v[((b0 + b) * p.cols + c * 32u) / 4u + k];
                            acc[b * ROWS + r] += dot32(v, xv);
                        }
                    }
                }
            }
#endif
        }

        [[unroll]] for (uint b = 0u; b < NB; b++)
        {
            [[unroll]] for (uint r = 0u; r < ROWS; r++)
            {
                float total = subgroupAdd(acc[b * ROWS + r]);
                if (t == 0u && b < nb && row0 + r < p.rows)
                {
                    if (p.hasBias != 0u) total += p.bias.v[row0 + r];
                    p.y.v[(b0 + b) * p.rows + row0 + r] = total;
                }
            }
        }
    }
}
