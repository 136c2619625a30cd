namespace Exo.Inference.Tests.Support;

/// <summary>Where the repository and the shared fixtures beside it are.</summary>
public static class TestPaths
{
    public static string RepositoryRoot { get; } = FindRoot();

    public static string Shared => Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared"));

    /// <summary>Every reference model folder: the shared fixtures and the repository's own extra shapes.</summary>
    public static IEnumerable<string> FixtureModels()
    {
        var folders = new[] { Path.Combine(Shared, "fixtures"), Path.Combine(RepositoryRoot, "tests", "fixtures") };
        return folders.Where(Directory.Exists)
            .SelectMany(f => Directory.EnumerateFiles(f, "reference.json", SearchOption.AllDirectories))
            .Select(Path.GetDirectoryName)
            .OfType<string>()
            .Order(StringComparer.Ordinal);
    }

    public static string Fixture(string name) => Path.Combine(Shared, "fixtures", name);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Exo.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException($"no Exo.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>A temporary folder removed when the test ends.</summary>
public sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("exo-test-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
