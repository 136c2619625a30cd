namespace Exo.ShardWorker.Models;

/// <summary>
/// Where a model's files are read from: the folder of that name directly inside the models directory, nowhere else. The
/// name comes over the network (a placement's model id), so a name that leads elsewhere ("..", a path, an absolute path)
/// is refused. Links that the machine's owner put in the models directory are followed: only names come from the network,
/// and a Hugging Face cache's model folders are made of links.
/// </summary>
internal static class ModelFolder
{
    /// <summary>The model's folder in <paramref name="modelsDirectory"/>; null when <paramref name="modelId"/> is not a folder name.</summary>
    public static string? Resolve(string modelsDirectory, string modelId)
    {
        // The rule the worker's file server applies to the same names (hidden folders are never models).
        if (!Hub.ModelPaths.IsModelId(modelId)) return null;
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelsDirectory));
        var folder = Path.GetFullPath(Path.Combine(root, modelId));
        return Path.GetDirectoryName(folder) == root ? folder : null;
    }
}
