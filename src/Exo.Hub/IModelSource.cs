namespace Exo.Hub;

/// <summary>
/// Somewhere one model's files can be read from: the Hugging Face Hub at a revision, or a peer worker that holds the
/// model. The downloader reads the same way from either.
/// </summary>
public interface IModelSource
{
    /// <summary>Names the source in messages (the hub's URL and repository, a peer's address).</summary>
    string Name { get; }

    /// <summary>The model's files; a <see cref="ModelSourceException"/> when the source does not have the model or cannot be reached.</summary>
    Task<ModelListing> ListAsync(CancellationToken cancellationToken);

    /// <summary>The bytes of <paramref name="file"/> from <paramref name="offset"/> for <paramref name="length"/> bytes (to the end when null).</summary>
    Task<SourceStream> OpenAsync(ModelFile file, long offset, long? length, CancellationToken cancellationToken);
}
