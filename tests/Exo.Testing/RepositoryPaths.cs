namespace Exo.Testing;

/// <summary>Where the repository, the shared fixtures beside it and the shipped model are.</summary>
public static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>../shared beside the checkout: fixtures, real tokenizers, benchmarks (read there, never copied).</summary>
    public static string Shared => Path.GetFullPath(Path.Combine(Root, "..", "shared"));

    public static string Fixture(string name) => Path.Combine(Shared, "fixtures", name);

    public static string ShippedModel => Path.Combine(Root, "models", "exo-tiny");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Exo.sln"))) return dir.FullName;
        }

        throw new InvalidOperationException($"no Exo.sln above {AppContext.BaseDirectory}");
    }
}
