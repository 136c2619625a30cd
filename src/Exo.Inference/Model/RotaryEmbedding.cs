namespace Exo.Inference.Model;

/// <summary>
/// Rotary position embedding frequencies. Computed in f32 as transformers computes them, so that positions far into
/// the context rotate by exactly the angles the checkpoint was trained with.
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _inverseFrequencies; // [headDim / 2]

    public RotaryEmbedding(RopeConfig rope, int headDim)
    {
        var half = headDim / 2;
        _inverseFrequencies = new float[half];
        for (var i = 0; i < half; i++)
        {
            var exponent = (float)(2 * i) / headDim;
            _inverseFrequencies[i] = 1.0f / (float)Math.Pow(rope.Theta, exponent);
        }

        switch (rope.Type)
        {
            case "linear":
                for (var i = 0; i < half; i++) _inverseFrequencies[i] = (float)(_inverseFrequencies[i] / rope.Factor);
                break;
            case "llama3":
                ApplyLlama3Scaling(rope);
                break;
            case RopeConfig.FactorsType:
                if (rope.FrequencyFactors is not { } factors || factors.Length != half)
                    throw new ModelFormatException($"rope frequency factors must hold {half} values");
                for (var i = 0; i < half; i++) _inverseFrequencies[i] /= factors[i];
                break;
        }
    }

    public int Half => _inverseFrequencies.Length;

    /// <summary>
    /// The per-dimension divisors that turn the unscaled frequencies into this rope's: how GGUF stores llama3-style
    /// scaling (a rope_freqs tensor) for llama.cpp.
    /// </summary>
    public static float[] FrequencyFactors(RopeConfig rope, int headDim)
    {
        var plain = new RotaryEmbedding(rope with { Type = "default" }, headDim)._inverseFrequencies;
        var scaled = new RotaryEmbedding(rope, headDim)._inverseFrequencies;
        return plain.Select((f, i) => f / scaled[i]).ToArray();
    }

    /// <summary>Llama 3.1's scaling: long wavelengths slowed by the factor, short ones kept, a smooth blend between.</summary>
    private void ApplyLlama3Scaling(RopeConfig rope)
    {
        var lowFreqWavelength = rope.OriginalMaxPositionEmbeddings / rope.LowFreqFactor;
        var highFreqWavelength = rope.OriginalMaxPositionEmbeddings / rope.HighFreqFactor;
        for (var i = 0; i < _inverseFrequencies.Length; i++)
        {
            double frequency = _inverseFrequencies[i];
            var wavelength = 2 * Math.PI / frequency;
            if (wavelength > lowFreqWavelength)
            {
                frequency /= rope.Factor;
            }
            else if (wavelength >= highFreqWavelength)
            {
                var smooth = (rope.OriginalMaxPositionEmbeddings / wavelength - rope.LowFreqFactor) / (rope.HighFreqFactor - rope.LowFreqFactor);
                frequency = (1 - smooth) * frequency / rope.Factor + smooth * frequency;
            }

            _inverseFrequencies[i] = (float)frequency;
        }
    }

    /// <summary>Fills cos and sin [positions.Length, headDim / 2] for the given absolute positions.</summary>
    public void Compute(ReadOnlySpan<int> positions, Span<float> cos, Span<float> sin)
    {
        var half = _inverseFrequencies.Length;
        for (var t = 0; t < positions.Length; t++)
        {
            for (var i = 0; i < half; i++)
            {
                var angle = _inverseFrequencies[i] * (float)positions[t];
                cos[t * half + i] = (float)Math.Cos(angle);
                sin[t * half + i] = (float)Math.Sin(angle);
            }
        }
    }
}
