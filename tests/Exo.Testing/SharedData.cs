using System.Text.Json;
using Xunit;

namespace Exo.Testing;

/// <summary>Lists and reads the model folders of ../shared.</summary>
public static class SharedData
{
    public static IEnumerable<string> Folders(string group) =>
        Directory.GetDirectories(Path.Combine(RepositoryPaths.Shared, group)).Order(StringComparer.Ordinal);

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
