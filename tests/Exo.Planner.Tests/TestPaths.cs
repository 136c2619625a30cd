namespace Exo.Planner.Tests;

/// <summary>Where the repository and the shared fixtures beside it are.</summary>
internal static class TestPaths
{
    public static string RepositoryRoot { get; } = FindRoot();

    public static string Fixture(string name) => Path.Combine(RepositoryRoot, "..", "shared", "fixtures", name);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Exo.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException($"no Exo.sln above {AppContext.BaseDirectory}");
    }
}
