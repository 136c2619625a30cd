using System.Text.RegularExpressions;

namespace Exo.Hub;

/// <summary>
/// A Hugging Face model repository and a revision of it (a branch, a tag or a commit), as <c>ORG/NAME[@REVISION]</c>.
/// Both come from the user and end up in URLs and folder names, so both are checked as the hub checks them.
/// </summary>
public sealed partial record ModelReference(string Organization, string Name, string Revision)
{
    public const string DefaultRevision = "main";

    // The hub's own limit on a repository id's length.
    private const int MaxRepoIdLength = 96;
    private const int MaxRevisionLength = 256;

    public string RepoId => $"{Organization}/{Name}";

    public override string ToString() => Revision == DefaultRevision ? RepoId : $"{RepoId}@{Revision}";

    /// <summary>Parses <c>ORG/NAME</c> or <c>ORG/NAME@REVISION</c>; an <see cref="ArgumentException"/> says what is wrong.</summary>
    public static ModelReference Parse(string text)
    {
        var at = text.IndexOf('@', StringComparison.Ordinal);
        var repo = at < 0 ? text : text[..at];
        var revision = at < 0 ? DefaultRevision : text[(at + 1)..];
        var slash = repo.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || repo.IndexOf('/', slash + 1) >= 0)
            throw new ArgumentException($"'{text}' is not a model id: write ORG/NAME or ORG/NAME@REVISION, as in Qwen/Qwen2.5-0.5B-Instruct@main");
        CheckPart(text, repo[..slash], "organization");
        CheckPart(text, repo[(slash + 1)..], "name");
        if (repo.Length > MaxRepoIdLength) throw new ArgumentException($"'{repo}' is longer than the hub's {MaxRepoIdLength} characters");
        CheckRevision(revision);
        return new ModelReference(repo[..slash], repo[(slash + 1)..], revision);
    }

    /// <summary>A branch, tag or commit: letters, digits and <c>._-/</c>, without empty, "." or ".." segments.</summary>
    public static void CheckRevision(string revision)
    {
        if (revision.Length is 0 or > MaxRevisionLength || !RevisionCharacters().IsMatch(revision)
            || revision.Split('/').Any(segment => segment is "" or "." or ".."))
            throw new ArgumentException($"'{revision}' is not a revision: use a branch, a tag or a commit (letters, digits, '.', '_', '-', '/'), such as main");
    }

    private static void CheckPart(string text, string part, string what)
    {
        if (!RepoPart().IsMatch(part) || part.Contains("--", StringComparison.Ordinal) || part.Contains("..", StringComparison.Ordinal)
            || part.EndsWith(".git", StringComparison.Ordinal))
            throw new ArgumentException($"'{text}' has an invalid {what} '{part}': use letters, digits, '-', '_' and '.', starting and ending with a letter or digit");
    }

    [GeneratedRegex("^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")]
    private static partial Regex RepoPart();

    [GeneratedRegex("^[A-Za-z0-9._/-]+$")]
    private static partial Regex RevisionCharacters();
}
