using System.Globalization;
using System.Text;

namespace Exo.Text.Templates;

/// <summary>
/// A parsed Jinja template, rendered the way transformers renders chat templates: trim_blocks and lstrip_blocks on,
/// no autoescaping, loop controls, the globals <c>raise_exception</c>, <c>strftime_now</c>, <c>range</c>,
/// <c>namespace</c> and <c>dict</c>. Immutable and thread-safe; each render has its own state.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly IReadOnlyList<Node> _nodes;
    private readonly TimeProvider _clock;

    private JinjaTemplate(IReadOnlyList<Node> nodes, TimeProvider clock)
    {
        _nodes = nodes;
        _clock = clock;
    }

    /// <summary>Parses a template; a syntax error is a <see cref="TemplateException"/> with the line.</summary>
    /// <param name="clock">What <c>strftime_now</c> reads (local time); the system clock when null.</param>
    public static JinjaTemplate Parse(string source, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        var tokens = new Lexer(source).Tokenize();
        return new JinjaTemplate(new Parser(tokens).ParseTemplate(), clock ?? TimeProvider.System);
    }

    /// <summary>
    /// Renders with the given variables: null, bool, int/long, double, string, lists and string-keyed dictionaries
    /// (nested freely), or <see cref="System.Text.Json.JsonElement"/> values.
    /// </summary>
    public string Render(IReadOnlyDictionary<string, object?> variables) => RenderTracked(variables).Text;

    /// <summary>Renders and also returns where the output of each <c>{% generation %}</c> block lies in the text.</summary>
    internal (string Text, IReadOnlyList<CharSpan> Generation) RenderTracked(IReadOnlyDictionary<string, object?> variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in variables)
        {
            scope[name] = ToTemplateValue(value);
        }
        var interpreter = new Interpreter(Globals(), scope);
        var text = interpreter.Render(_nodes);
        return (text, interpreter.Generation);
    }

    /// <summary>Converts .NET and JSON values into the interpreter's Python-like values.</summary>
    internal static object? ToTemplateValue(object? value) => value switch
    {
        null or bool or long or double or string => value,
        int i => (long)i,
        float f => (double)f,
        decimal m => (double)m,
        System.Text.Json.JsonElement json => PyJson.FromJson(json),
        System.Text.Json.Nodes.JsonNode node => PyJson.FromJson(System.Text.Json.JsonSerializer.SerializeToElement(node)),
        IReadOnlyDictionary<string, object?> dict => ToOrdered(dict),
        IDictionary<string, object?> dict => ToOrdered(dict),
        System.Collections.IEnumerable list => list.Cast<object?>().Select(ToTemplateValue).ToList(),
        _ => throw new ArgumentException($"values of type {value.GetType().Name} cannot be passed to a template"),
    };

    private static OrderedDictionary<string, object?> ToOrdered(IEnumerable<KeyValuePair<string, object?>> pairs)
    {
        var result = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, item) in pairs)
        {
            result[key] = ToTemplateValue(item);
        }
        return result;
    }

    private Dictionary<string, object?> Globals() => new(StringComparer.Ordinal)
    {
        ["raise_exception"] = new Callable("raise_exception", (args, _) =>
            throw new TemplateRuntimeException(TemplateErrorKind.Raised, args.Count > 0 ? Py.Str(args[0]) : "raise_exception called")),
        ["strftime_now"] = new Callable("strftime_now", (args, _) =>
            Strftime.Format(_clock.GetLocalNow().DateTime, args.Count > 0 ? Py.Str(args[0]) : "")),
        ["range"] = new Callable("range", (args, _) => Range(args)),
        ["namespace"] = new Callable("namespace", (args, kwargs) =>
        {
            var ns = new Namespace();
            if (args.Count > 0 && args[0] is OrderedDictionary<string, object?> initial)
            {
                foreach (var (key, item) in initial)
                {
                    ns.Attributes[key] = item;
                }
            }
            foreach (var (key, item) in kwargs)
            {
                ns.Attributes[key] = item;
            }
            return ns;
        }),
        ["dict"] = new Callable("dict", (_, kwargs) =>
        {
            var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (key, item) in kwargs)
            {
                dict[key] = item;
            }
            return dict;
        }),
    };

    private static List<object?> Range(List<object?> args)
    {
        var (start, stop, step) = args.Count switch
        {
            1 => (0L, Py.ToLong(args[0]), 1L),
            2 => (Py.ToLong(args[0]), Py.ToLong(args[1]), 1L),
            3 => (Py.ToLong(args[0]), Py.ToLong(args[1]), Py.ToLong(args[2])),
            _ => throw new TemplateRuntimeException(TemplateErrorKind.Type, $"range expected 1 to 3 arguments, got {args.Count}"),
        };
        if (step == 0)
        {
            throw new TemplateRuntimeException(TemplateErrorKind.Value, "range() arg 3 must not be zero");
        }
        var result = new List<object?>();
        for (var i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (result.Count >= 1_000_000)
            {
                throw new TemplateRuntimeException(TemplateErrorKind.Value, "range too large");
            }
            result.Add(i);
        }
        return result;
    }
}

/// <summary>Python's <c>datetime.strftime</c> for the directives templates use, in the C locale.</summary>
internal static class Strftime
{
    public static string Format(DateTime time, string format)
    {
        var builder = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                builder.Append(format[i]);
                continue;
            }
            var directive = format[++i];
            var noPad = directive == '-' && i + 1 < format.Length;
            if (noPad)
            {
                directive = format[++i];
            }
            builder.Append(directive switch
            {
                'd' => Pad(time.Day, 2, noPad),
                'e' => time.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2),
                'm' => Pad(time.Month, 2, noPad),
                'Y' => time.Year.ToString(CultureInfo.InvariantCulture),
                'y' => Pad(time.Year % 100, 2, noPad),
                'H' => Pad(time.Hour, 2, noPad),
                'I' => Pad(time.Hour % 12 == 0 ? 12 : time.Hour % 12, 2, noPad),
                'M' => Pad(time.Minute, 2, noPad),
                'S' => Pad(time.Second, 2, noPad),
                'f' => (time.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", CultureInfo.InvariantCulture),
                'j' => Pad(time.DayOfYear, 3, noPad),
                'p' => time.Hour < 12 ? "AM" : "PM",
                'b' or 'h' => CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedMonthName(time.Month),
                'B' => CultureInfo.InvariantCulture.DateTimeFormat.GetMonthName(time.Month),
                'a' => CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedDayName(time.DayOfWeek),
                'A' => CultureInfo.InvariantCulture.DateTimeFormat.GetDayName(time.DayOfWeek),
                'w' => ((int)time.DayOfWeek).ToString(CultureInfo.InvariantCulture),
                'F' => time.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                'T' => time.ToString("HH:mm:ss", CultureInfo.InvariantCulture),
                '%' => "%",
                _ => "%" + directive,
            });
        }
        return builder.ToString();
    }

    private static string Pad(int value, int width, bool noPad) =>
        noPad ? value.ToString(CultureInfo.InvariantCulture) : value.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0');
}
