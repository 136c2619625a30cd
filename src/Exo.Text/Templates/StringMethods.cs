using System.Globalization;
using System.Text;

namespace Exo.Text.Templates;

/// <summary>The Python <c>str</c> methods chat templates call, as bound callables.</summary>
internal static class StringMethods
{
    public static Callable? Get(string s, string name) => name switch
    {
        "strip" => new Callable(name, (a, _) => Strip(s, Chars(a), left: true, right: true)),
        "lstrip" => new Callable(name, (a, _) => Strip(s, Chars(a), left: true, right: false)),
        "rstrip" => new Callable(name, (a, _) => Strip(s, Chars(a), left: false, right: true)),
        "startswith" => new Callable(name, (a, _) => Affixes(a).Any(p => s.StartsWith(p, StringComparison.Ordinal))),
        "endswith" => new Callable(name, (a, _) => Affixes(a).Any(p => s.EndsWith(p, StringComparison.Ordinal))),
        "split" => new Callable(name, (a, k) => Split(s, Arg(a, k, 0, "sep") as string, Arg(a, k, 1, "maxsplit") is { } m ? Py.ToLong(m) : -1)),
        "replace" => new Callable(name, (a, k) => Replace(s, Py.Str(Arg(a, k, 0, "old")), Py.Str(Arg(a, k, 1, "new")), Arg(a, k, 2, "count") is { } c ? Py.ToLong(c) : -1)),
        "upper" => new Callable(name, (_, _) => s.ToUpperInvariant()),
        "lower" => new Callable(name, (_, _) => s.ToLowerInvariant()),
        "title" => new Callable(name, (_, _) => Title(s)),
        "capitalize" => new Callable(name, (_, _) => Capitalize(s)),
        "find" => new Callable(name, (a, _) => (long)s.IndexOf(Py.Str(a.FirstOrDefault()), StringComparison.Ordinal)),
        "rfind" => new Callable(name, (a, _) => (long)s.LastIndexOf(Py.Str(a.FirstOrDefault()), StringComparison.Ordinal)),
        "count" => new Callable(name, (a, _) => (long)CountOccurrences(s, Py.Str(a.FirstOrDefault()))),
        "join" => new Callable(name, (a, _) => string.Join(s, Py.Iterate(a.FirstOrDefault()).Select(Py.Str))),
        "splitlines" => new Callable(name, (_, _) => s.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n').Cast<object?>().Where(_ => s.Length > 0).ToList()),
        "isdigit" => new Callable(name, (_, _) => s.Length > 0 && s.All(char.IsDigit)),
        "isalpha" => new Callable(name, (_, _) => s.Length > 0 && s.All(char.IsLetter)),
        "isalnum" => new Callable(name, (_, _) => s.Length > 0 && s.All(char.IsLetterOrDigit)),
        "isspace" => new Callable(name, (_, _) => s.Length > 0 && s.All(char.IsWhiteSpace)),
        "islower" => new Callable(name, (_, _) => s.Any(char.IsLetter) && s == s.ToLowerInvariant()),
        "isupper" => new Callable(name, (_, _) => s.Any(char.IsLetter) && s == s.ToUpperInvariant()),
        "format" => new Callable(name, (a, k) => Format(s, a, k)),
        _ => null,
    };

    private static object? Arg(List<object?> args, Dictionary<string, object?> kwargs, int position, string name) =>
        position < args.Count ? args[position] : kwargs.GetValueOrDefault(name);

    private static string? Chars(List<object?> args) => args.Count > 0 ? args[0] as string : null;

    private static IEnumerable<string> Affixes(List<object?> args) => args.FirstOrDefault() switch
    {
        string s => [s],
        List<object?> list => list.Select(Py.Str),
        var other => throw new TemplateRuntimeException(TemplateErrorKind.Type, $"startswith/endswith first arg must be str or a tuple of str, not {Py.TypeName(other)}"),
    };

    public static string Strip(string s, string? chars, bool left, bool right)
    {
        var start = 0;
        var end = s.Length;
        bool Strippable(char c) => chars is null ? char.IsWhiteSpace(c) : chars.Contains(c);
        while (left && start < end && Strippable(s[start]))
        {
            start++;
        }
        while (right && end > start && Strippable(s[end - 1]))
        {
            end--;
        }
        return s[start..end];
    }

    public static string Replace(string s, string old, string replacement, long count)
    {
        if (count < 0)
        {
            return old.Length == 0 ? InsertBetweenAll(s, replacement) : s.Replace(old, replacement, StringComparison.Ordinal);
        }
        var builder = new StringBuilder();
        var position = 0;
        for (var done = 0L; done < count && old.Length > 0; done++)
        {
            var found = s.IndexOf(old, position, StringComparison.Ordinal);
            if (found < 0)
            {
                break;
            }
            builder.Append(s, position, found - position).Append(replacement);
            position = found + old.Length;
        }
        return builder.Append(s, position, s.Length - position).ToString();
    }

    private static string InsertBetweenAll(string s, string insert) =>
        insert + string.Concat(Py.TextElements(s).Select(c => (string)c! + insert));

    private static List<object?> Split(string s, string? separator, long maxSplit)
    {
        if (separator is null)
        {
            var words = new List<object?>();
            var i = 0;
            while (i < s.Length)
            {
                while (i < s.Length && char.IsWhiteSpace(s[i]))
                {
                    i++;
                }
                if (i >= s.Length)
                {
                    break;
                }
                if (maxSplit >= 0 && words.Count == maxSplit)
                {
                    words.Add(s[i..].TrimEnd());
                    break;
                }
                var start = i;
                while (i < s.Length && !char.IsWhiteSpace(s[i]))
                {
                    i++;
                }
                words.Add(s[start..i]);
            }
            return words;
        }
        if (separator.Length == 0)
        {
            throw new TemplateRuntimeException(TemplateErrorKind.Value, "empty separator");
        }
        var parts = maxSplit < 0
            ? s.Split(separator)
            : s.Split(separator, (int)Math.Min(maxSplit + 1, int.MaxValue));
        return parts.Cast<object?>().ToList();
    }

    public static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    public static string Title(string s)
    {
        var builder = new StringBuilder(s.Length);
        var previousCased = false;
        foreach (var c in s)
        {
            builder.Append(previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousCased = char.IsLetter(c);
        }
        return builder.ToString();
    }

    private static int CountOccurrences(string s, string sub)
    {
        if (sub.Length == 0)
        {
            return s.Length + 1;
        }
        var count = 0;
        for (var i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }

    /// <summary><c>str.format</c> with <c>{}</c>, <c>{0}</c> and <c>{name}</c> fields (no format specs).</summary>
    private static string Format(string format, List<object?> args, Dictionary<string, object?> kwargs)
    {
        var builder = new StringBuilder();
        var auto = 0;
        for (var i = 0; i < format.Length; i++)
        {
            var c = format[i];
            if ((c == '{' || c == '}') && i + 1 < format.Length && format[i + 1] == c)
            {
                builder.Append(c);
                i++;
                continue;
            }
            if (c != '{')
            {
                builder.Append(c);
                continue;
            }
            var close = format.IndexOf('}', i);
            if (close < 0)
            {
                throw new TemplateRuntimeException(TemplateErrorKind.Value, "Single '{' encountered in format string");
            }
            var field = format[(i + 1)..close];
            object? value = field.Length == 0 ? Arg(args, kwargs, auto++, "")
                : int.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out var index) ? Arg(args, kwargs, index, "")
                : kwargs.TryGetValue(field, out var named) ? named
                : throw new TemplateRuntimeException(TemplateErrorKind.Value, $"unknown format field '{field}'");
            builder.Append(Py.Str(value));
            i = close;
        }
        return builder.ToString();
    }
}
