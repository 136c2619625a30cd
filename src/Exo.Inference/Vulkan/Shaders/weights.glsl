// Dequantizes one 32-value chunk of a weight row into registers, for the weight type the file is compiled for
// (-DWEIGHT_F32, _F16, _BF16, _Q8_0, _Q4_0, _Q4_K, _Q6_K). Layouts are those VulkanWeights packs at upload:
//   F32, F16, BF16: rows of `cols` values, as stored.
//   Q8_0: quads [rows, cols / 16] of int8 values; halves[rows * cols / 32] of f16 scales.      x = d·q
//   Q4_0: quads [rows, cols / 32] of nibbles (byte j: value j low, j + 16 high); f16 scales.   x = d·(q − 8)
//   Q4_K: GGUF's 144-byte blocks as stored, 9 quads each: d, dmin, 12 bytes of 6-bit scales and mins, 128 of nibbles.
//   Q6_K: 208-byte blocks of ql[128] qh[64] scales[16], 13 quads each; f16 d in the scales buffer.

uint byteOf(uvec4 q, uint i) { return (q[i >> 2] >> ((i & 3u) * 8u)) & 0xFFu; }

float halfAt(Words h, uint i) { return unpackHalf2x16(h.v[i >> 1] >> ((i & 1u) * 16u)).x; }

void dequantChunk(Quads w, Words scales, uint cols, uint row, uint c, out float v[32])
{
#if defined(WEIGHT_F32)
    uint base = (row * cols + c * 32u) / 4u;
    [[unroll]] for (uint i = 0u; i < 8u; i++)
    {
        uvec4 q = w.v[base + i];
        [[unroll]] for (uint k = 0u; k < 4u; k++) v[i * 4u + k] = uintBitsToFloat(q[k]);
    }
#elif defined(WEIGHT_F16) || defined(WEIGHT_BF16)
    uint base = (row * cols + c * 32u) / 8u;
    [[unroll]] for (uint i = 0u; i < 4u; i++)
    {
        uvec4 q = w.v[base + i];
        [[unroll]] for (uint k = 0u; k < 4u; k++)
        {
#if defined(WEIGHT_F16)
            vec2 pair = unpackHalf2x16(q[k]);
            v[i * 8u + k * 2u] = pair.x;
            v[i * 8u + k * 2u + 1u] = pair.y;
#else
            v[i * 8u + k * 2u] = uintBitsToFloat(q[k] << 16);
            v[i * 8u + k * 2u + 1u] = uintBitsToFloat(q[k] & 0xFFFF0000u);
#endif
        }
    }
#elif defined(WEIGHT_Q8_0)
    uint block = row * (cols / 32u) + c;
    float d = halfAt(scales, block);
    [[unroll]] for (uint i = 0u; i < 2u; i++)
    {
        uvec4 q = w.v[block * 2u + i];
        [[unroll]] for (uint k = 0u; k < 16u; k++) v[i * 16u + k] = d * float(bitfieldExtract(int(q[k >> 2]), int((k & 3u) * 8u), 8));
    }
#elif defined(WEIGHT_Q4_0)
    uint block = row * (cols / 32u) + c;
    float d = halfAt(scales, block);
    uvec4 q = w.v[block];
    [[unroll]] for (uint k = 0u; k < 16u; k++)
    {
        uint b = byteOf(q, k);
        v[k] = d * (float(b & 0xFu) - 8.0);
        v[k + 16u] = d * (float(b >> 4) - 8.0);
    }
#elif defined(WEIGHT_Q4_K)
    uint super = row * (cols / 256u) + c / 8u;
    uint j = c % 8u;
    uvec4 head = w.v[super * 9u];
    vec2 dm = unpackHalf2x16(head.x);
    // The 12 scale bytes are bytes 4..15 of the head quad.
    uint sj = 4u + j, sjm4 = j >= 4u ? j : 0u;
    uint sc, m;
    if (j < 4u)
    {
        sc = byteOf(head, sj) & 63u;
        m = byteOf(head, 4u + j + 4u) & 63u;
    }
    else
    {
        sc = (byteOf(head, 4u + j + 4u) & 0xFu) | ((byteOf(head, sjm4) >> 6) << 4);
        m = (byteOf(head, 4u + j + 4u) >> 4) | ((byteOf(head, sj) >> 6) << 4);
    }
    float d = dm.x * float(sc), mn = dm.y * float(m);
    uint shift = (j & 1u) * 4u;
    [[unroll]] for (uint i = 0u; i < 2u; i++)
    {
        uvec4 q = w.v[super * 9u + 1u + (j / 2u) * 2u + i];
        [[unroll]] for (uint k = 0u; k < 16u; k++) v[i * 16u + k] = d * float((byteOf(q, k) >> shift) & 0xFu) - mn;
    }
#elif defined(WEIGHT_Q6_K)
    uint super = row * (cols / 256u) + c / 8u;
    uint j = c % 8u, h = j / 4u, part = j % 4u;
    uint base = super * 13u;
    float d = halfAt(scales, super);
    // ql: quads 0..7 (64 bytes per half), qh: quads 8..11 (32 bytes per half), scales: quad 12 (8 per half).
    uvec4 sq = w.v[base + 12u];
    uint qlQuad = base + h * 4u + (part & 1u) * 2u;
    uint qhQuad = base + 8u + h * 2u;
    uint qlShift = (part >> 1) * 4u, qhShift = part * 2u;
    [[unroll]] for (uint i = 0u; i < 2u; i++)
    {
        uvec4 ql = w.v[qlQuad + i];
        uvec4 qh = w.v[qhQuad + i];
        float s = d * float(bitfieldExtract(int(sq[(h * 8u + part * 2u + i) >> 2]), int(((h * 8u + part * 2u + i) & 3u) * 8u), 8));
        [[unroll]] for (uint k = 0u; k < 16u; k++)
        {
            uint q = ((byteOf(ql, k) >> qlShift) & 0xFu) | (((byteOf(qh, k) >> qhShift) & 3u) << 4);
            v[i * 16u + k] = s * (float(q) - 32.0);
        }
    }
#else
#error "compile with one of -DWEIGHT_F32, _F16, _BF16, _Q8_0, _Q4_0, _Q4_K, _Q6_K"
#endif
}
