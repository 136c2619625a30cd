namespace Exo.Inference.Tokenization;

internal static class UnicodeNfc
{
    public static string Normalize(string text) => text;
}
