using System.Globalization;

namespace Exo.Planner.Planning;

/// <summary>Memory sizes for people: decimal gigabytes with one decimal, as disk and RAM are sold.</summary>
public static class ByteSize
{
    public static string Gigabytes(long bytes) =>
        (bytes / 1e9).ToString("0.0", CultureInfo.InvariantCulture) + " GB";
}
