namespace Exo.Inference.Tests.Support;

/// <summary>The reference model folders the engine is checked against.</summary>
public static class TestPaths
{
    /// <summary>Every reference model folder: the shared fixtures and the repository's own extra shapes.</summary>
    public static IEnumerable<string> FixtureModels()
    {
        var folders = new[] { Path.Combine(RepositoryPaths.Shared, "fixtures"), Path.Combine(RepositoryPaths.Root, "tests", "fixtures") };
        return folders.Where(Directory.Exists)
            .SelectMany(f => Directory.EnumerateFiles(f, "reference.json", SearchOption.AllDirectories))
            .Select(Path.GetDirectoryName)
            .OfType<string>()
            .Order(StringComparer.Ordinal);
    }
}
