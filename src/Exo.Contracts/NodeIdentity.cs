using System.Text.RegularExpressions;

namespace Exo.Contracts;

/// <summary>
/// A node's stable id, kept in a file under its data directory so that the node is the same node across restarts.
/// Created once; a file whose contents are not a valid id is an error rather than silently replaced, since the
/// placement and the registry know the node by that id.
/// </summary>
public static partial class NodeIdentity
{
    public const string FileName = "node-id";
    public const string Rule = "1 to 64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex ValidId();

    public static bool IsValid(string? id) => id is not null && ValidId().IsMatch(id);

    /// <summary>Reads the node id from <paramref name="dataDirectory"/>, creating the directory and a new id the first time.</summary>
    public static string LoadOrCreate(string dataDirectory)
    {
        Directory.CreateDirectory(dataDirectory);
        var path = Path.Combine(dataDirectory, FileName);
        if (!File.Exists(path))
        {
            // Written aside and moved into place, so a concurrent start never reads a half-written id; if another
            // process won the race, its id stands.
            var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
            File.WriteAllText(temporary, Guid.NewGuid().ToString("N") + "\n");
            try
            {
                File.Move(temporary, path, overwrite: false);
            }
            catch (IOException) when (File.Exists(path))
            {
                File.Delete(temporary);
            }
        }

        var info = new FileInfo(path);
        if (info.Length > 256) throw new InvalidDataException($"{path}: {info.Length} bytes is too long for a node id; delete the file to get a new id");
        var id = File.ReadAllText(path).Trim();
        return IsValid(id) ? id
            : throw new InvalidDataException($"{path}: '{id}' is not a valid node id ({Rule}); fix it or delete the file to get a new id");
    }
}
