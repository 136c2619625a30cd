using Exo.Contracts;

namespace Exo.Hub;

/// <summary>What <see cref="ModelFileEndpoints.MapModelFiles"/> serves: the model folders of <see cref="ModelsDirectory"/>, to callers that present <see cref="Secret"/> when it is set.</summary>
public sealed record ModelFileOptions(string ModelsDirectory)
{
    public ClusterSecret Secret { get; init; } = ClusterSecret.None;

    /// <summary>The most files one model folder may list; a folder with more is refused rather than walked without end.</summary>
    public int MaxFiles { get; init; } = 10_000;
}
