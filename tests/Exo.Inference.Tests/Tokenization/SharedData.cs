using System.Text.Json;

namespace Exo.Inference.Tests.Tokenization;

/// <summary>Locates ../shared (next to the repository root, the folder holding Exo.sln) and lists its model folders.</summary>
internal static class SharedData
{
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Exo.sln")))
            {
                return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared"));
            }
        }
        throw new DirectoryNotFoundException("no Exo.sln above " + AppContext.BaseDirectory);
    }

    public static IEnumerable<string> Folders(string group) =>
        Directory.GetDirectories(Path.Combine(Root, group)).Order(StringComparer.Ordinal);

    public static TheoryData<string> FolderNames(string group)
    {
        var data = new TheoryData<string>();
        foreach (var folder in Folders(group))
        {
            data.Add(Path.GetFileName(folder));
        }
        return data;
    }

    public static JsonElement ReadJson(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        return document.RootElement.Clone();
    }

    public static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();
}
