using Exo.Inference.Model;

namespace Exo.Ring;

/// <summary>
/// What a receiver knows of the model, to check what arrives against it. A gateway knows none of it (null), and then
/// only the codec's own bounds apply.
/// </summary>
public sealed record RingLimits(int? VocabSize, int? HiddenSize, int? MaxPositions)
{
    public static readonly RingLimits Unknown = new(null, null, null);

    public static RingLimits Of(ModelConfig config) => new(config.VocabSize, config.HiddenSize, config.MaxPositionEmbeddings);
}
