namespace Exo.Text.Constraints;

/// <summary>
/// A schema that cannot be compiled (malformed, unsupported, unsatisfiable or too large), or a grammar that cannot be
/// started (the token limit is too small, or the vocabulary cannot write what the grammar needs).
/// </summary>
public sealed class GrammarException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>An error naming the JSON pointer (as a URI fragment, "#" for the root) of the schema at fault.</summary>
    internal static GrammarException At(string pointer, string what) => new($"schema at '{pointer}': {what}");
}
