using System.Runtime.Intrinsics;

namespace Exo.Inference.Weights;

/// <summary>GGML's "k-quants": super-blocks of 256 values whose sub-block scales are themselves quantized.</summary>
public static partial class Quants
{
    private const int SuperBlock = 256;
    // Below this a group's largest magnitude counts as zero.
    private const float GroupMaxEps = 1e-15f;

    /// <summary>
    /// Sub-block j's 6-bit scale and min from Q4_K/Q5_K's 12 packed bytes: sub-blocks 0-3 keep theirs in the low 6 bits
    /// of bytes j and j + 4; sub-blocks 4-7 split theirs into a nibble of byte j + 4 and the top 2 bits of bytes j − 4 and j.
    /// </summary>
    internal static (int Scale, int Min) ScaleMin(ReadOnlySpan<byte> scales, int j) => j < 4
        ? (scales[j] & 63, scales[j + 4] & 63)
        : ((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4), (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));

    /// <summary>Packs eight 6-bit scales and mins into the 12 bytes of a Q4_K or Q5_K block.</summary>
    internal static void PackScaleMins(ReadOnlySpan<byte> scales, ReadOnlySpan<byte> mins, Span<byte> packed)
    {
        packed.Clear();
        for (var j = 0; j < 8; j++)
        {
            if (j < 4)
            {
                packed[j] = scales[j];
                packed[j + 4] = mins[j];
            }
            else
            {
                packed[j + 4] = (byte)((scales[j] & 0xF) | ((mins[j] & 0xF) << 4));
                packed[j - 4] |= (byte)((scales[j] >> 4) << 6);
                packed[j] |= (byte)((mins[j] >> 4) << 6);
            }
        }
    }

    // Q4_K: [d: f16][dmin: f16][scales: 12][qs: 128]. Each 64 values share 32 bytes: low nibbles first 32, high nibbles next 32.
    private static void DequantizeQ4_K(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = Half(block, 0), dmin = Half(block, 2);
        var scales = block.Slice(4, 12);
        var qs = block.Slice(16, 128);
        for (var chunk = 0; chunk < 4; chunk++)
        {
            var (s1, m1) = ScaleMin(scales, 2 * chunk);
            var (s2, m2) = ScaleMin(scales, 2 * chunk + 1);
            float d1 = d * s1, min1 = dmin * m1, d2 = d * s2, min2 = dmin * m2;
            for (var l = 0; l < 32; l += 16)
            {
                var q = Vector128.Create(qs.Slice(32 * chunk + l, 16));
                Scaled(q & Vector128.Create((byte)0xF), d1, min1, y.Slice(64 * chunk + l, 16));
                Scaled(q >>> 4, d2, min2, y.Slice(64 * chunk + 32 + l, 16));
            }
        }
    }

    /// <summary>y[i] = scale · q[i] − min for 16 unsigned levels: a multiply then a subtract, as the scalar form rounds.</summary>
    private static void Scaled(Vector128<byte> q, float scale, float min, Span<float> y)
    {
        var (low, high) = Vector128.Widen(q);
        var (q0, q1) = Vector128.Widen(low);
        var (q2, q3) = Vector128.Widen(high);
        Vector128<float> vs = Vector128.Create(scale), vm = Vector128.Create(min);
        (Vector128.ConvertToSingle(q0) * vs - vm).CopyTo(y);
        (Vector128.ConvertToSingle(q1) * vs - vm).CopyTo(y[4..]);
        (Vector128.ConvertToSingle(q2) * vs - vm).CopyTo(y[8..]);
        (Vector128.ConvertToSingle(q3) * vs - vm).CopyTo(y[12..]);
    }

    // Q5_K: [d][dmin][scales: 12][qh: 32][qs: 128]; value 64c + l takes bit 2c of qh[l] as its fifth bit, 64c + 32 + l bit 2c + 1.
    private static void DequantizeQ5_K(ReadOnlySpan<byte> block, Span<float> y)
    {
        float d = Half(block, 0), dmin = Half(block, 2);
        var scales = block.Slice(4, 12);
        var qh = block.Slice(16, 32);
        var qs = block.Slice(48, 128);
        for (var chunk = 0; chunk < 4; chunk++)
        {
            var (s1, m1) = ScaleMin(scales, 2 * chunk);
            var (s2, m2) = ScaleMin(scales, 2 * chunk + 1);
            float d1 = d * s1, min1 = dmin * m1, d2 = d * s2, min2 = dmin * m2;
            for (var l = 0; l < 32; l++)
            {
                var q = qs[32 * chunk + l];
                var high = qh[l] >> (2 * chunk);
                y[64 * chunk + l] = d1 * ((q & 0xF) | ((high & 1) << 4)) - min1;
                y[64 * chunk + 32 + l] = d2 * ((q >> 4) | (((high >> 1) & 1) << 4)) - min2;
            }
        }
    }

    // Q6_K: [ql: 128][qh: 64][scales: 16 × int8][d: f16], in two halves of 128 values (64 ql bytes, 32 qh bytes, 8 scales each).
    // Value l of a half's four quarters: low or high nibble of ql[l] or ql[l + 32], with bits 0-1, 2-3, 4-5 or 6-7 of qh[l].
    private static void DequantizeQ6_K(ReadOnlySpan<byte> block, Span<float> y)
    {
        var d = Half(block, 208);
        var nibble = Vector128.Create((byte)0xF);
        var lowTwoBits = Vector128.Create((byte)3);
        for (var half = 0; half < 2; half++)
        {
            var ql = block.Slice(64 * half, 64);
            var qh = block.Slice(128 + 32 * half, 32);
            var sc = block.Slice(192 + 8 * half, 8);
            var yh = y.Slice(128 * half, 128);
            for (var l = 0; l < 32; l += 16)
            {
                var i = l / 16;
                Vector128<byte> a = Vector128.Create(ql.Slice(l, 16)), b = Vector128.Create(ql.Slice(l + 32, 16)), h = Vector128.Create(qh.Slice(l, 16));
                Signed((a & nibble) | ((h & lowTwoBits) << 4), d * (sbyte)sc[i], yh.Slice(l, 16));
                Signed((b & nibble) | (((h >>> 2) & lowTwoBits) << 4), d * (sbyte)sc[i + 2], yh.Slice(l + 32, 16));
                Signed((a >>> 4) | (((h >>> 4) & lowTwoBits) << 4), d * (sbyte)sc[i + 4], yh.Slice(l + 64, 16));
                Signed((b >>> 4) | (((h >>> 6) & lowTwoBits) << 4), d * (sbyte)sc[i + 6], yh.Slice(l + 96, 16));
            }
        }
    }

    /// <summary>y[i] = scale · (q[i] − 32) for 16 six-bit levels.</summary>
    private static void Signed(Vector128<byte> q, float scale, Span<float> y)
    {
        var (low, high) = Vector128.Widen(q);
        var (q0, q1) = Vector128.Widen(low.AsInt16() - Vector128.Create((short)32));
        var (q2, q3) = Vector128.Widen(high.AsInt16() - Vector128.Create((short)32));
        var vs = Vector128.Create(scale);
        (vs * Vector128.ConvertToSingle(q0)).CopyTo(y);
        (vs * Vector128.ConvertToSingle(q1)).CopyTo(y[4..]);
        (vs * Vector128.ConvertToSingle(q2)).CopyTo(y[8..]);
        (vs * Vector128.ConvertToSingle(q3)).CopyTo(y[12..]);
    }

    private static void QuantizeQ4_K(ReadOnlySpan<float> x, Span<byte> block) =>
        QuantizeScaleMin(x, block, 15, -1f, 0.1f, 20, block.Slice(16, 128), PackNibbles);

    private static void QuantizeQ5_K(ReadOnlySpan<float> x, Span<byte> block) =>
        QuantizeScaleMin(x, block, 31, -0.5f, 0.1f, 15, block.Slice(16, 160), PackFiveBits);

    /// <summary>
    /// Q4_K and Q5_K: fit a scale and min to each sub-block of 32 (weighted least squares over a small search), quantize
    /// the 8 scales and 8 mins to 6 bits against the super-block's largest, then requantize the values with them.
    /// </summary>
    private static void QuantizeScaleMin(ReadOnlySpan<float> x, Span<byte> block, int nmax, float rmin, float rdelta, int steps,
        Span<byte> quants, QuantPacker pack)
    {
        Span<byte> levels = stackalloc byte[SuperBlock];
        Span<byte> scratch = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> scales = stackalloc float[8];
        Span<float> mins = stackalloc float[8];
        float maxScale = 0, maxMin = 0;
        for (var j = 0; j < 8; j++)
        {
            var sub = x.Slice(32 * j, 32);
            var sumSquares = 0f;
            foreach (var v in sub) sumSquares += v * v;
            var average = MathF.Sqrt(sumSquares / 32);
            for (var l = 0; l < 32; l++) weights[l] = average + MathF.Abs(sub[l]);
            scales[j] = FitScaleMin(sub, weights, nmax, levels.Slice(32 * j, 32), scratch, rmin, rdelta, steps, out mins[j]);
            maxScale = MathF.Max(maxScale, scales[j]);
            maxMin = MathF.Max(maxMin, mins[j]);
        }

        var inverseScale = maxScale > 0 ? 63f / maxScale : 0f;
        var inverseMin = maxMin > 0 ? 63f / maxMin : 0f;
        Span<byte> scaleLevels = stackalloc byte[8];
        Span<byte> minLevels = stackalloc byte[8];
        for (var j = 0; j < 8; j++)
        {
            scaleLevels[j] = (byte)Math.Min(63, NearestInt(inverseScale * scales[j]));
            minLevels[j] = (byte)Math.Min(63, NearestInt(inverseMin * mins[j]));
        }

        PackScaleMins(scaleLevels, minLevels, block.Slice(4, 12));
        WriteHalf(block, 0, maxScale / 63f);
        WriteHalf(block, 2, maxMin / 63f);

        // Requantize against the rounded scales, as the decoder will see them.
        float d = Half(block, 0), dmin = Half(block, 2);
        for (var j = 0; j < 8; j++)
        {
            var (s, m) = ScaleMin(block.Slice(4, 12), j);
            var scale = d * s;
            if (scale == 0) continue;
            var min = dmin * m;
            for (var l = 0; l < 32; l++)
                levels[32 * j + l] = (byte)Math.Clamp(NearestInt((x[32 * j + l] + min) / scale), 0, nmax);
        }

        pack(levels, quants);
    }

    private delegate void QuantPacker(ReadOnlySpan<byte> levels, Span<byte> quants);

    private static void PackNibbles(ReadOnlySpan<byte> levels, Span<byte> qs)
    {
        for (var chunk = 0; chunk < 4; chunk++)
        {
            for (var l = 0; l < 32; l++) qs[32 * chunk + l] = (byte)(levels[64 * chunk + l] | (levels[64 * chunk + 32 + l] << 4));
        }
    }

    /// <summary>Q5_K: the 32 fifth-bit bytes, then the nibbles as Q4_K.</summary>
    private static void PackFiveBits(ReadOnlySpan<byte> levels, Span<byte> quants)
    {
        var qh = quants[..32];
        qh.Clear();
        for (var chunk = 0; chunk < 4; chunk++)
        {
            for (var l = 0; l < 32; l++)
            {
                qh[l] |= (byte)(((levels[64 * chunk + l] >> 4) << (2 * chunk)) | ((levels[64 * chunk + 32 + l] >> 4) << (2 * chunk + 1)));
            }
        }

        Span<byte> low = stackalloc byte[SuperBlock];
        for (var i = 0; i < SuperBlock; i++) low[i] = (byte)(levels[i] & 0xF);
        PackNibbles(low, quants[32..]);
    }

    /// <summary>
    /// GGML's make_qkx2_quants: levels L in [0, nmax] with x ≈ scale·L − min minimising the weighted squared error,
    /// starting from the min/max fit and trying <paramref name="steps"/> + 1 nearby scales. Returns scale; min is ≥ 0.
    /// </summary>
    private static float FitScaleMin(ReadOnlySpan<float> x, ReadOnlySpan<float> w, int nmax, Span<byte> levels, Span<byte> trial,
        float rmin, float rdelta, int steps, out float theMin)
    {
        float min = x[0], max = x[0], sumW = w[0], sumX = w[0] * x[0];
        for (var i = 1; i < x.Length; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            sumW += w[i];
            sumX += w[i] * x[i];
        }

        if (min > 0) min = 0;
        if (max == min)
        {
            levels.Clear();
            theMin = -min;
            return 0f;
        }

        var iscale = nmax / (max - min);
        var scale = 1 / iscale;
        var bestError = 0f;
        for (var i = 0; i < x.Length; i++)
        {
            levels[i] = (byte)Math.Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
            var diff = scale * levels[i] + min - x[i];
            bestError += w[i] * diff * diff;
        }

        for (var step = 0; step <= steps; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (var i = 0; i < x.Length; i++)
            {
                var l = Math.Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
                trial[i] = (byte)l;
                sumL += w[i] * l;
                sumL2 += w[i] * l * l;
                sumXL += w[i] * l * x[i];
            }

            var det = sumW * sumL2 - sumL * sumL;
            if (det <= 0) continue;
            var thisScale = (sumW * sumXL - sumX * sumL) / det;
            var thisMin = (sumL2 * sumX - sumL * sumXL) / det;
            if (thisMin > 0)
            {
                thisMin = 0;
                thisScale = sumXL / sumL2;
            }

            var error = 0f;
            for (var i = 0; i < x.Length; i++)
            {
                var diff = thisScale * trial[i] + thisMin - x[i];
                error += w[i] * diff * diff;
            }

            if (error < bestError)
            {
                trial[..x.Length].CopyTo(levels);
                bestError = error;
                scale = thisScale;
                min = thisMin;
            }
        }

        theMin = -min;
        return scale;
    }

    private static void QuantizeQ6_K(ReadOnlySpan<float> x, Span<byte> block)
    {
        Span<sbyte> levels = stackalloc sbyte[SuperBlock];
        Span<float> scales = stackalloc float[16];
        float maxScale = 0, maxAbsScale = 0;
        for (var i = 0; i < 16; i++)
        {
            scales[i] = FitSymmetric(x.Slice(16 * i, 16), 32, levels.Slice(16 * i, 16));
            if (MathF.Abs(scales[i]) > maxAbsScale)
            {
                maxAbsScale = MathF.Abs(scales[i]);
                maxScale = scales[i];
            }
        }

        block.Clear();
        if (maxAbsScale < GroupMaxEps) return;

        var iscale = -128f / maxScale;
        WriteHalf(block, 208, 1 / iscale);
        for (var i = 0; i < 16; i++) block[192 + i] = (byte)(sbyte)Math.Min(127, NearestInt(iscale * scales[i]));

        var d = Half(block, 208);
        Span<byte> q = stackalloc byte[SuperBlock];
        for (var i = 0; i < 16; i++)
        {
            var scale = d * (sbyte)block[192 + i];
            if (scale == 0)
            {
                // A sub-block whose scale rounded to zero keeps its first-pass levels (they decode to zero anyway).
                for (var l = 0; l < 16; l++) q[16 * i + l] = (byte)(levels[16 * i + l] + 32);
                continue;
            }

            for (var l = 0; l < 16; l++) q[16 * i + l] = (byte)(Math.Clamp(NearestInt(x[16 * i + l] / scale), -32, 31) + 32);
        }

        for (var half = 0; half < 2; half++)
        {
            var ql = block.Slice(64 * half, 64);
            var qh = block.Slice(128 + 32 * half, 32);
            var qq = q.Slice(128 * half, 128);
            for (var l = 0; l < 32; l++)
            {
                ql[l] = (byte)((qq[l] & 0xF) | ((qq[l + 64] & 0xF) << 4));
                ql[l + 32] = (byte)((qq[l + 32] & 0xF) | ((qq[l + 96] & 0xF) << 4));
                qh[l] = (byte)((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) | ((qq[l + 64] >> 4) << 4) | ((qq[l + 96] >> 4) << 6));
            }
        }
    }

    /// <summary>
    /// GGML's make_qx_quants with x²-weighted error: levels in [−nmax, nmax − 1] around the value of largest magnitude,
    /// refined over 18 nearby scales. Returns the scale (its sign follows that value) and the signed levels.
    /// </summary>
    private static float FitSymmetric(ReadOnlySpan<float> x, int nmax, Span<sbyte> levels)
    {
        float max = 0, amax = 0;
        foreach (var v in x)
        {
            if (MathF.Abs(v) > amax)
            {
                amax = MathF.Abs(v);
                max = v;
            }
        }

        if (amax < GroupMaxEps)
        {
            levels.Clear();
            return 0f;
        }

        var iscale = -nmax / max;
        float sumLX = 0, sumL2 = 0;
        for (var i = 0; i < x.Length; i++)
        {
            var l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
            levels[i] = (sbyte)l;
            var w = x[i] * x[i];
            sumLX += w * x[i] * l;
            sumL2 += w * l * l;
        }

        var scale = sumL2 != 0 ? sumLX / sumL2 : 0f;
        var best = scale * sumLX;
        for (var step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumLX = sumL2 = 0;
            for (var i = 0; i < x.Length; i++)
            {
                var l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
                var w = x[i] * x[i];
                sumLX += w * x[i] * l;
                sumL2 += w * l * l;
            }

            if (sumL2 > 0 && sumLX * sumLX > best * sumL2)
            {
                for (var i = 0; i < x.Length; i++) levels[i] = (sbyte)Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }

        return scale;
    }
}
