using System.Reflection;

namespace Exo.AppHost;

/// <summary>
/// The services the AppHost runs, found where their own builds put them: the project file records each referenced
/// project's target path as <c>[AssemblyMetadata("ServiceProject:NAME", PATH)]</c> (the counterpart of Aspire's <c>Projects.*</c>).
/// </summary>
public static class ServiceProjects
{
    public const string Registry = "Exo.Registry";
    public const string Planner = "Exo.Planner";
    public const string ShardWorker = "Exo.ShardWorker";
    public const string Gateway = "Exo.Gateway";

    private const string Prefix = "ServiceProject:";

    public static IReadOnlyDictionary<string, string> All { get; } = typeof(ServiceProjects).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>()
        .Where(a => a.Key.StartsWith(Prefix, StringComparison.Ordinal) && a.Value is not null)
        .ToDictionary(a => a.Key[Prefix.Length..], a => a.Value!, StringComparer.Ordinal);

    /// <summary>The built assembly of <paramref name="project"/>; a missing one names what to build.</summary>
    public static string PathOf(string project)
    {
        if (!All.TryGetValue(project, out var path))
        {
            throw new AppHostInputException($"{project} is not among the AppHost's service projects (known: {string.Join(", ", All.Keys)})");
        }

        return File.Exists(path)
            ? path
            : throw new AppHostInputException($"{project} is not built: {path} is missing (build Exo.AppHost, which builds it)");
    }
}
