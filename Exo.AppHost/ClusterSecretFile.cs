using System.Security.Cryptography;

namespace Exo.AppHost;

/// <summary>
/// The cluster's join secret, made once and kept in the data directory (readable by its owner only), so that every run
/// of the AppHost, and every worker installed on another machine with it, shares the same one.
/// </summary>
public static class ClusterSecretFile
{
    public const string FileName = "cluster-secret";

    public static string Location(string dataDirectory) => Path.Combine(dataDirectory, FileName);

    /// <summary>The secret in <paramref name="dataDirectory"/>, made there the first time.</summary>
    public static string LoadOrCreate(string dataDirectory)
    {
        Directory.CreateDirectory(dataDirectory);
        var path = Location(dataDirectory);
        if (!File.Exists(path))
        {
            // Written aside and moved into place, so a concurrent start never reads half a secret; if another won the race, its secret stands.
            var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
            var ownerOnly = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) ownerOnly.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var writer = new StreamWriter(temporary, ownerOnly)) writer.WriteLine(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)));
            try
            {
                File.Move(temporary, path, overwrite: false);
            }
            catch (IOException) when (File.Exists(path))
            {
                File.Delete(temporary);
            }
        }

        var secret = File.ReadAllText(path).Trim();
        return secret.Length > 0 ? secret
            : throw new AppHostInputException($"{path} is empty: write the cluster's join secret in it, or delete it to have a new one made (every worker then needs the new one)");
    }
}
