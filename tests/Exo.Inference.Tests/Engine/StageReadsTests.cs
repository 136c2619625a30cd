using Exo.Inference.Model;

namespace Exo.Inference.Tests.Engine;

/// <summary>Which tensors a stage reads, which is all it fetches from a peer: every tensor by exactly the stages that need it.</summary>
public sealed class StageReadsTests
{
    [Theory]
    [InlineData("model.embed_tokens.weight", false, true, false, false)]
    [InlineData("model.embed_tokens.weight", true, true, false, true)]
    [InlineData("model.norm.weight", false, false, false, true)]
    [InlineData("lm_head.weight", false, false, false, true)]
    [InlineData("model.layers.0.self_attn.q_proj.weight", false, true, false, false)]
    [InlineData("model.layers.3.mlp.down_proj.weight", false, true, false, false)]
    [InlineData("model.layers.4.input_layernorm.weight", false, false, true, false)]
    [InlineData("model.layers.7.self_attn.k_norm.weight", false, false, false, true)]
    [InlineData("model.layers.8.mlp.up_proj.weight", false, false, false, false)]
    [InlineData("model.layers.-1.mlp.up_proj.weight", false, false, false, false)]
    [InlineData("model.layers.+4.mlp.up_proj.weight", false, false, false, false)]
    [InlineData("model.layers.x.mlp.up_proj.weight", false, false, false, false)]
    [InlineData("model.rotary_emb.inv_freq", false, false, false, false)]
    public void EachTensorIsReadByTheStagesThatUseIt(string name, bool tied, bool first, bool middle, bool last)
    {
        // An 8-layer model in three stages: [0, 4), [4, 6), [6, 8).
        Assert.Equal(first, StageWeights.Reads(name, new LayerRange(0, 4), 8, tied));
        Assert.Equal(middle, StageWeights.Reads(name, new LayerRange(4, 6), 8, tied));
        Assert.Equal(last, StageWeights.Reads(name, new LayerRange(6, 8), 8, tied));
    }

    [Fact]
    public void AStageOfTheWholeModelReadsBothEnds()
    {
        Assert.True(StageWeights.Reads("model.embed_tokens.weight", new LayerRange(0, 8), 8, tiedEmbeddings: false));
        Assert.True(StageWeights.Reads("lm_head.weight", new LayerRange(0, 8), 8, tiedEmbeddings: false));
    }
}
