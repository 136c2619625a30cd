namespace Exo.Text.Templates;

/// <summary>
/// MarkupSafe's <c>Markup</c> (3.0), what Jinja's <c>safe</c> and <c>escape</c> filters make: a str marked as already
/// HTML-safe. With autoescape off (transformers' environment) output, <c>~</c>, <c>join</c> and <c>replace</c> treat it
/// as plain text; Python's own operators and str methods on it keep it safe and escape the plain strings they take in.
/// </summary>
internal sealed record Markup(string Text)
{
    /// <summary>markupsafe.escape: a Markup is returned unchanged, anything else is str()-ed and HTML-escaped.</summary>
    public static Markup Escape(object? value) => value as Markup ?? new Markup(EscapeText(Py.Str(value)));

    /// <summary>MarkupSafe's five replacements.</summary>
    public static string EscapeText(string text) => text
        .Replace("&", "&amp;", StringComparison.Ordinal)
        .Replace(">", "&gt;", StringComparison.Ordinal)
        .Replace("<", "&lt;", StringComparison.Ordinal)
        .Replace("'", "&#39;", StringComparison.Ordinal)
        .Replace("\"", "&#34;", StringComparison.Ordinal);

    /// <summary>Markup keeps its type through these, as the filters built on <c>soft_str</c> and MarkupSafe's methods do.</summary>
    public static object KeepSafe(object? original, string result) => original is Markup ? new Markup(result) : result;

    /// <summary>
    /// A str method of a Markup: the ones MarkupSafe overrides return Markup (split and splitlines a list of them), escaping
    /// the text they insert (replace's new, join's items, format's arguments); the rest behave as on the plain string.
    /// </summary>
    public Callable? Method(string name)
    {
        var plain = StringMethods.Get(Text, name);
        if (plain is null)
        {
            return null;
        }
        return name switch
        {
            "strip" or "lstrip" or "rstrip" or "upper" or "lower" or "title" or "capitalize" =>
                new Callable(name, (args, kwargs) => new Markup((string)plain.Invoke(args, kwargs)!)),
            "replace" => new Callable(name, (args, kwargs) => new Markup((string)plain.Invoke(EscapeAt(args, 1), EscapeNamed(kwargs, "new"))!)),
            "split" or "splitlines" => new Callable(name, (args, kwargs) =>
                ((List<object?>)plain.Invoke(args, kwargs)!).Select(part => (object?)new Markup((string)part!)).ToList()),
            "join" => new Callable(name, (args, kwargs) =>
                new Markup(string.Join(Text, Py.Iterate(args.FirstOrDefault()).Select(item => Escape(item).Text)))),
            "format" => new Callable(name, (args, kwargs) => new Markup((string)plain.Invoke(
                args.Select(arg => (object?)Escape(arg).Text).ToList(),
                kwargs.ToDictionary(p => p.Key, p => (object?)Escape(p.Value).Text, StringComparer.Ordinal))!)),
            _ => plain,
        };
    }

    private static List<object?> EscapeAt(List<object?> args, int position) =>
        args.Select((arg, i) => i == position && arg is string or Markup ? Escape(arg).Text : arg).ToList();

    private static Dictionary<string, object?> EscapeNamed(Dictionary<string, object?> kwargs, string name) =>
        kwargs.ToDictionary(p => p.Key, p => p.Key == name && p.Value is string or Markup ? Escape(p.Value).Text : p.Value, StringComparer.Ordinal);
}
