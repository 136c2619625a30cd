using System.Text.RegularExpressions;

namespace Exo.Api.OpenAi;

/// <summary>The names OpenAI lets a client give a function or a JSON schema: 1 to 64 letters, digits, '_' or '-'.</summary>
internal static partial class OpenAiNames
{
    public static bool IsName(string name) => Name().IsMatch(name);

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex Name();
}
