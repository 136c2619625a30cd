using System.Text.Json;
using Exo.Inference.Model;
using Exo.Inference.Tests.Support;

namespace Exo.Inference.Tests.Engine;

public sealed class ModelConfigTests
{
    private static ModelConfig Parse(string json) => ModelConfig.Parse(JsonDocument.Parse(json).RootElement);

    private const string Llama = """
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100
        """;

    [Fact]
    public void ReadsTheFixtureFamilies()
    {
        var llama = ModelConfig.Load(RepositoryPaths.Fixture("llama-tiny"));
        Assert.Equal((4, 2, 16, true, false, false), (llama.HeadCount, llama.KvHeadCount, llama.HeadDim, llama.TieWordEmbeddings, llama.QkvBias, llama.QkNorm));
        Assert.Equal(500000.0, llama.Rope.Theta);

        var qwen2 = ModelConfig.Load(RepositoryPaths.Fixture("qwen2-tiny"));
        Assert.Equal((true, false, false), (qwen2.QkvBias, qwen2.OutputBias, qwen2.TieWordEmbeddings));
        Assert.Equal(2, Assert.Single(qwen2.EosTokenIds));

        var qwen3 = ModelConfig.Load(RepositoryPaths.Fixture("qwen3-tiny"));
        Assert.Equal((32, 128, true), (qwen3.HeadDim, qwen3.QueryDim, qwen3.QkNorm));
    }

    [Fact]
    public void DefaultsFollowTransformers()
    {
        var c = Parse($$"""{ "model_type": "llama", {{Llama}} }""");
        Assert.Equal((4, 16, 10000.0, "default"), (c.KvHeadCount, c.HeadDim, c.Rope.Theta, c.Rope.Type));
        Assert.All(c.SlidingWindows, w => Assert.Equal(0, w));
    }

    [Fact]
    public void ReadsOlderRopeScalingAndLlama3Parameters()
    {
        var c = Parse($$"""
            { "model_type": "llama", {{Llama}}, "rope_theta": 500000.0, "eos_token_id": [7, 9],
              "rope_scaling": { "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 8192 } }
            """);
        Assert.Equal(new RopeConfig(500000.0, "llama3", 8.0, 1.0, 4.0, 8192), c.Rope);
        Assert.Equal([7, 9], c.EosTokenIds);

        var linear = Parse($$"""{ "model_type": "mistral", {{Llama}}, "rope_scaling": { "type": "linear", "factor": 2.0 } }""");
        Assert.Equal(("linear", 2.0), (linear.Rope.Type, linear.Rope.Factor));
    }

    [Fact]
    public void SlidingWindowsFollowEachFamily()
    {
        var mistral = Parse($$"""{ "model_type": "mistral", {{Llama}}, "sliding_window": 16 }""");
        Assert.Equal([16, 16], mistral.SlidingWindows);

        var qwen = Parse($$"""{ "model_type": "qwen2", {{Llama}}, "sliding_window": 16, "use_sliding_window": true, "max_window_layers": 1 }""");
        Assert.Equal([0, 16], qwen.SlidingWindows);

        var typed = Parse($$"""{ "model_type": "qwen3", {{Llama}}, "sliding_window": 8, "layer_types": ["sliding_attention", "full_attention"] }""");
        Assert.Equal([8, 0], typed.SlidingWindows);
    }

    [Theory]
    [InlineData("""{ "model_type": "gpt2", "hidden_size": 8 }""", "model_type 'gpt2' is not supported")]
    [InlineData("""{ "hidden_size": 8 }""", "no model_type")]
    [InlineData("""{ "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100, "rope_scaling": { "rope_type": "yarn", "factor": 4.0 } }""", "rope scaling type 'yarn' is not supported")]
    [InlineData("""{ "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100, "rope_scaling": { "rope_type": "llama3", "factor": 8.0 } }""", "needs low_freq_factor")]
    [InlineData("""{ "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 100 }""", "not a multiple of num_key_value_heads")]
    [InlineData("""{ "model_type": "llama", "hidden_size": "64" }""", "hidden_size must be")]
    [InlineData("""{ "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 0, "num_attention_heads": 4, "vocab_size": 100 }""", "num_hidden_layers must be a positive integer")]
    [InlineData("""{ "model_type": "llama", "hidden_act": "gelu", "hidden_size": 64 }""", "hidden_act 'gelu'")]
    [InlineData("""{ "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 65536, "head_dim": 65538, "vocab_size": 100 }""", "not a plausible attention shape")]
    [InlineData("""{ "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100, "rope_theta": -1 }""", "rope_theta -1 must be a positive number")]
    public void BadConfigsAreClearErrors(string json, string message) =>
        Assert.Contains(message, Assert.Throws<ModelFormatException>(() => Parse(json)).Message);

    [Fact]
    public void MissingOrMalformedFileIsAnError()
    {
        using var temp = new TempDirectory();
        Assert.Contains("config.json: missing", Assert.Throws<ModelFormatException>(() => ModelConfig.Load(temp.Path)).Message);
        File.WriteAllText(temp.File("config.json"), "{ not json");
        Assert.Contains("not valid JSON", Assert.Throws<ModelFormatException>(() => ModelConfig.Load(temp.Path)).Message);
    }

    [Fact]
    public void Llama3ScalingSlowsOnlyLongWavelengths()
    {
        const int headDim = 64;
        var plain = new RotaryEmbedding(new RopeConfig(500000, "default"), headDim);
        var scaled = new RotaryEmbedding(new RopeConfig(500000, "llama3", 8, 1, 4, 64), headDim);
        int[] positions = [1];
        float[] plainCos = new float[headDim / 2], plainSin = new float[headDim / 2], cos = new float[headDim / 2], sin = new float[headDim / 2];
        plain.Compute(positions, plainCos, plainSin);
        scaled.Compute(positions, cos, sin);

        // Frequency i at position 1 is the angle itself; wavelength 2π/f decides the band.
        for (var i = 0; i < headDim / 2; i++)
        {
            var f = Math.Atan2(plainSin[i], plainCos[i]);
            var g = Math.Atan2(sin[i], cos[i]);
            var wavelength = 2 * Math.PI / f;
            if (wavelength < 64 / 4.0) Assert.Equal(f, g, 6);
            else if (wavelength > 64 / 1.0) Assert.Equal(f / 8, g, 6);
            else Assert.InRange(g, f / 8 - 1e-9, f + 1e-9);
        }
    }
}
