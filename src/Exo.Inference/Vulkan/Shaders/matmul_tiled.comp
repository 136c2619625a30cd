#version 450
// y[n, rows] = x[n, cols] · W[rows, cols]ᵀ (+ bias[rows]) (+ y itself, the residual, where FLAG_ACCUMULATE is set) for
// many activation rows at once (prefill), W of the type compiled in (weights.glsl). Each weight is dequantized once per TM activation rows, not once per NB as in matmul.comp.
// Launch: ceil(rows / TN) · ceil(n / TM) workgroups of 256 threads (16 × 16); workgroup (wn, wm) computes the output
// tile rows [wm·TM, +TM) × columns [wn·TN, +TN). Per 32-value step, threads stage x's [TM, 32] and W's dequantized
// [TN, 32] in shared memory, both transposed (k major); thread (ty, tx) then accumulates outputs (ty + 16i, tx + 16j),
// i, j < 4, in order of k.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#include "weights.glsl"

layout(local_size_x = 256) in;

layout(push_constant) uniform Push
{
    Vec4s x;        // [n, cols / 4]
    Quads w;        // weight values (see weights.glsl)
    Words scales;   // weight scales, where the type has them apart
    Floats bias;    // [rows], read with FLAG_BIAS
    Floats y;       // [n, rows]
    Quads w2;       // matmul.comp's GLU operands, unused here: the two kernels share one push constant block
    Words scales2;
    Floats bias2;
    uint n;
    uint rows;
    uint cols;
    uint flags;
} p;

const uint FLAG_BIAS = 1u, FLAG_ACCUMULATE = 2u; // VulkanKernels.MatMulFlags

const uint TM = 64u, TN = 64u;
// k major and unpadded: 16 KiB in all, the least shared memory Vulkan promises (maxComputeSharedMemorySize). For a
// given k the inner loop's lanes read neighbouring words, which lie in distinct banks without padding.
shared float xs[32][TM]; // [k, activation row]
shared float ws[32][TN]; // [k, weight row]

void main()
{
    uint tilesN = (p.rows + TN - 1u) / TN;
    uint wn = groupIndex() % tilesN, wm = groupIndex() / tilesN;
    if (wm * TM >= p.n) return;
    uint t = gl_LocalInvocationID.x, tx = t % 16u, ty = t / 16u;
    float acc[4][4];
    [[unroll]] for (uint i = 0u; i < 4u; i++) [[unroll]] for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;

    for (uint c = 0u; c < p.cols / 32u; c++)
    {
        // x: 64 rows × 8 vec4 = 512 vec4, two per thread; rows past n read as zero.
        [[unroll]] for (uint e = 0u; e < 2u; e++)
        {
            uint k = t + e * 256u, r = k / 8u, q = k % 8u;
            uint row = wm * TM + r;
            vec4 v = row < p.n ? p.x.v[(row * p.cols + c * 32u) / 4u + q] : vec4(0.0);
            xs[q * 4u][r] = v.x;
            xs[q * 4u + 1u][r] = v.y;
            xs[q * 4u + 2u][r] = v.z;
            xs[q * 4u + 3u][r] = v.w;
        }
        // W: 64 chunks of 32 values, one per thread of the first 64; rows past the matrix read as zero.
        if (t < TN)
        {
            float v[32];
            uint row = wn * TN + t;
            if (row < p.rows) dequantChunk(p.w, p.scales, p.cols, row, c, v);
            else [[unroll]] for (uint k = 0u; k < 32u; k++) v[k] = 0.0;
            [[unroll]] for (uint k = 0u; k < 32u; k++) ws[k][t] = v[k];
        }
        barrier();
        for (uint k = 0u; k < 32u; k++)
        {
            float a[4], b[4];
            [[unroll]] for (uint i = 0u; i < 4u; i++) a[i] = xs[k][ty + 16u * i];
            [[unroll]] for (uint j = 0u; j < 4u; j++) b[j] = ws[k][tx + 16u * j];
            [[unroll]] for (uint i = 0u; i < 4u; i++) [[unroll]] for (uint j = 0u; j < 4u; j++) acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
        barrier();
    }

    [[unroll]] for (uint i = 0u; i < 4u; i++)
    {
        uint row = wm * TM + ty + 16u * i;
        [[unroll]] for (uint j = 0u; j < 4u; j++)
        {
            uint col = wn * TN + tx + 16u * j;
            if (row < p.n && col < p.rows)
            {
                float out_ = acc[i][j] + ((p.flags & FLAG_BIAS) != 0u ? p.bias.v[col] : 0.0);
                if ((p.flags & FLAG_ACCUMULATE) != 0u) out_ = p.y.v[row * p.rows + col] + out_;
                p.y.v[row * p.rows + col] = out_;
            }
        }
    }
}
