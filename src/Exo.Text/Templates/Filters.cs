using System.Globalization;
using System.Text;

namespace Exo.Text.Templates;

/// <summary>Jinja's built-in filters that chat templates use, plus transformers' <c>tojson</c>.</summary>
internal static class Filters
{
    private delegate object? Filter(object? value, Arguments args, Interpreter interpreter);

    private static readonly Dictionary<string, Filter> Table = new(StringComparer.Ordinal)
    {
        ["trim"] = (v, a, _) => Markup.KeepSafe(v, StringMethods.Strip(Py.Str(v), Py.Text(a.Get(0, "chars")), left: true, right: true)),
        ["tojson"] = (v, a, _) => ToJson(v, a),
        ["length"] = (v, _, _) => (long)Py.Length(v),
        ["count"] = (v, _, _) => (long)Py.Length(v),
        ["upper"] = (v, _, _) => Markup.KeepSafe(v, Py.Str(v).ToUpperInvariant()),
        ["lower"] = (v, _, _) => Markup.KeepSafe(v, Py.Str(v).ToLowerInvariant()),
        ["capitalize"] = (v, _, _) => Markup.KeepSafe(v, StringMethods.Capitalize(Py.Str(v))),
        ["title"] = (v, _, _) => StringMethods.Title(Py.Str(v)),
        ["replace"] = (v, a, _) => StringMethods.Replace(Py.Str(v), Py.Str(a.Get(0, "old")), Py.Str(a.Get(1, "new")), a.Get(2, "count") is { } c ? Py.ToLong(c) : -1),
        ["join"] = (v, a, i) => string.Join(Py.Str(a.Get(0, "d", "")), Attribute(Py.Iterate(v), a.Get(1, "attribute")).Select(Py.Str)),
        ["first"] = (v, _, _) => Py.Iterate(v) is { Count: > 0 } items ? items[0] : new Undefined("first"),
        ["last"] = (v, _, _) => Py.Iterate(v) is { Count: > 0 } items ? items[^1] : new Undefined("last"),
        ["default"] = Default,
        ["d"] = Default,
        ["items"] = (v, _, _) => v switch
        {
            OrderedDictionary<string, object?> dict => dict.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
            Undefined => new List<object?>(),
            _ => throw new TemplateRuntimeException(TemplateErrorKind.Type, $"items filter expects a mapping, got {Py.TypeName(v)}"),
        },
        ["map"] = Map,
        ["selectattr"] = (v, a, i) => Select(v, a, i, byAttribute: true, keep: true),
        ["rejectattr"] = (v, a, i) => Select(v, a, i, byAttribute: true, keep: false),
        ["select"] = (v, a, i) => Select(v, a, i, byAttribute: false, keep: true),
        ["reject"] = (v, a, i) => Select(v, a, i, byAttribute: false, keep: false),
        ["list"] = (v, _, _) => Py.Iterate(v).ToList(),
        ["string"] = (v, _, _) => v as Markup ?? (object)Py.Str(v),
        ["safe"] = (v, _, _) => v as Markup ?? new Markup(Py.Str(v)),
        ["int"] = (v, a, _) => ToInt(v, a.Get(0, "default", 0L)),
        ["float"] = (v, a, _) => ToFloat(v, a.Get(0, "default", 0.0)),
        ["abs"] = (v, _, _) => v is double d ? Math.Abs(d) : (object)Math.Abs(Py.ToLong(v)),
        ["round"] = (v, a, _) => Round(Py.ToDouble(v), (int)Py.ToLong(a.Get(0, "precision", 0L)), Py.Str(a.Get(1, "method", "common"))),
        ["reverse"] = (v, _, _) => Py.Text(v) is { } s ? Markup.KeepSafe(v, string.Concat(Py.TextElements(s).AsEnumerable().Reverse().Cast<string>())) : Py.Iterate(v).AsEnumerable().Reverse().ToList(),
        ["sort"] = (v, a, _) => Sort(Py.Iterate(v), Py.Truthy(a.Get(0, "reverse", false)), a.Get(2, "attribute")),
        ["unique"] = (v, _, _) => Py.Iterate(v).Aggregate(new List<object?>(), (acc, x) => { if (!acc.Any(y => Py.Eq(x, y))) { acc.Add(x); } return acc; }),
        ["min"] = (v, a, _) => Sort(Py.Iterate(v), false, a.Get(1, "attribute")) is { Count: > 0 } s ? s[0] : new Undefined("min"),
        ["max"] = (v, a, _) => Sort(Py.Iterate(v), true, a.Get(1, "attribute")) is { Count: > 0 } s ? s[0] : new Undefined("max"),
        ["sum"] = (v, a, _) => Attribute(Py.Iterate(v), a.Get(0, "attribute")).Aggregate(a.Get(1, "start", 0L), (acc, x) => Arithmetic.Apply("+", acc, x)),
        ["dictsort"] = (v, a, _) => v is OrderedDictionary<string, object?> dict
            ? Sort(dict.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(), Py.Truthy(a.Get(2, "reverse", false)), Py.Str(a.Get(1, "by", "key")) == "value" ? 1L : 0L)
            : throw new TemplateRuntimeException(TemplateErrorKind.Type, "dictsort expects a mapping"),
        ["batch"] = (v, a, _) => Py.Iterate(v).Chunk((int)Math.Max(1, Py.ToLong(a.Get(0, "linecount")))).Select(c => (object?)c.ToList()).ToList(),
        ["indent"] = (v, a, _) => Markup.KeepSafe(v, Indent(Py.Str(v), a.Get(0, "width", 4L), Py.Truthy(a.Get(1, "first", false)), Py.Truthy(a.Get(2, "blank", false)))),
        ["center"] = (v, a, _) => Markup.KeepSafe(v, Center(Py.Str(v), (int)Py.ToLong(a.Get(0, "width", 80L)))),
        ["wordcount"] = (v, _, _) => (long)Py.Str(v).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length,
        ["escape"] = (v, _, _) => Markup.Escape(v),
        ["e"] = (v, _, _) => Markup.Escape(v),
        ["forceescape"] = (v, _, _) => new Markup(Markup.EscapeText(Py.Str(v))),
        ["attr"] = (v, a, _) => Builtins.GetAttribute(v, Py.Str(a.Get(0, "name"))),
        ["format"] = (v, a, _) => Arithmetic.Apply("%", v as Markup ?? (object)Py.Str(v), a.Positional.ToList()),
        ["pprint"] = (v, _, _) => Py.Repr(v),
    };

    public static bool Exists(string name) => Table.ContainsKey(name);

    public static object? Apply(string name, object? value, Arguments args, Interpreter interpreter)
    {
        if (!Table.TryGetValue(name, out var filter))
        {
            throw new TemplateRuntimeException(TemplateErrorKind.Syntax, $"no filter named '{name}'");
        }
        if (value is Undefined u && name is not ("default" or "d" or "length" or "count" or "list" or "join" or "string" or "trim" or "items" or "tojson" or "first" or "last"
            or "safe" or "escape" or "e" or "forceescape"))
        {
            throw u.Error();
        }
        return filter(value, args, interpreter);
    }

    /// <summary>transformers' tojson: json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys).</summary>
    private static string ToJson(object? value, Arguments args)
    {
        if (value is Undefined u)
        {
            throw u.Error();
        }
        var indent = args.Get(0, "indent") switch
        {
            null => null,
            long n => new string(' ', (int)Math.Clamp(n, 0, 64)),
            string s => s,
            var other => throw new TemplateRuntimeException(TemplateErrorKind.Type, $"indent must be an int or a string, not {Py.TypeName(other)}"),
        };
        var (itemSeparator, keySeparator) = (indent is null ? ", " : ",", ": ");
        if (args.Get(2, "separators") is List<object?> { Count: 2 } separators)
        {
            (itemSeparator, keySeparator) = (Py.Str(separators[0]), Py.Str(separators[1]));
        }
        return PyJson.Dumps(value, indent, itemSeparator, keySeparator, Py.Truthy(args.Get(3, "sort_keys", false)));
    }

    private static object? Default(object? value, Arguments args, Interpreter interpreter)
    {
        var fallback = args.Get(0, "default_value", "");
        var boolean = Py.Truthy(args.Get(1, "boolean", false));
        return value is Undefined || (boolean && !Py.Truthy(value)) ? fallback : value;
    }

    private static IEnumerable<object?> Attribute(IEnumerable<object?> items, object? attribute) =>
        attribute is null ? items : items.Select(item => AttributePath(item, Py.Str(attribute)));

    private static object? AttributePath(object? item, string path)
    {
        foreach (var part in path.Split('.'))
        {
            item = long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var index)
                ? Builtins.GetItem(item, index)
                : Builtins.GetItem(item, part);
        }
        return item;
    }

    private static object? Map(object? value, Arguments args, Interpreter interpreter)
    {
        var items = Py.Iterate(value);
        if (args.Keywords.TryGetValue("attribute", out var attribute))
        {
            var fallback = args.Keywords.GetValueOrDefault("default");
            return items.Select(item => AttributePath(item, Py.Str(attribute)) is Undefined && args.Keywords.ContainsKey("default") ? fallback : AttributePath(item, Py.Str(attribute))).ToList();
        }
        if (args.Positional.Count == 0 || args.Positional[0] is not string filter)
        {
            throw new TemplateRuntimeException(TemplateErrorKind.Type, "map needs a filter name or attribute=");
        }
        var rest = new Arguments(args.Positional.Skip(1).ToList(), args.Keywords);
        return items.Select(item => Apply(filter, item, rest, interpreter)).ToList();
    }

    private static object? Select(object? value, Arguments args, Interpreter interpreter, bool byAttribute, bool keep)
    {
        var offset = byAttribute ? 1 : 0;
        var attribute = byAttribute ? Py.Str(args.Get(0, "attribute")) : null;
        var test = args.Positional.Count > offset ? Py.Str(args.Positional[offset]) : null;
        var testArgs = args.Positional.Skip(offset + 1).ToList();
        return Py.Iterate(value).Where(item =>
        {
            var subject = attribute is null ? item : AttributePath(item, attribute);
            var passed = test is null ? Py.Truthy(subject) : Builtins.ApplyTest(test, subject, testArgs, interpreter);
            return passed == keep;
        }).ToList();
    }

    private static List<object?> Sort(List<object?> items, bool reverse, object? attribute)
    {
        var keyed = items.Select(item => (Key: attribute is null ? item : attribute is long i ? Builtins.GetItem(item, i) : AttributePath(item, Py.Str(attribute)), Item: item)).ToList();
        var comparer = Comparer<object?>.Create((x, y) =>
            Py.Text(x) is { } a && Py.Text(y) is { } b ? string.Compare(a, b, StringComparison.OrdinalIgnoreCase) : Py.Compare(x, y, "<"));
        var sorted = keyed.OrderBy(p => p.Key, comparer).Select(p => p.Item).ToList();
        if (reverse)
        {
            sorted.Reverse();
        }
        return sorted;
    }

    private static object ToInt(object? value, object? fallback) => value switch
    {
        long l => l,
        bool b => b ? 1L : 0L,
        double d => (long)Math.Truncate(d),
        _ when Py.Text(value) is { } s && long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) => l,
        _ when Py.Text(value) is { } s && double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => (long)Math.Truncate(d),
        _ => fallback!,
    };

    private static object ToFloat(object? value, object? fallback) => value switch
    {
        long or bool or double => Py.ToDouble(value),
        _ when Py.Text(value) is { } s && double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => d,
        _ => fallback!,
    };

    private static double Round(double value, int precision, string method)
    {
        var factor = Math.Pow(10, precision);
        return method switch
        {
            "ceil" => Math.Ceiling(value * factor) / factor,
            "floor" => Math.Floor(value * factor) / factor,
            _ => Math.Round(value, Math.Clamp(precision, 0, 15), MidpointRounding.AwayFromZero),
        };
    }

    private static string Indent(string text, object? width, bool first, bool blank)
    {
        var prefix = Py.Text(width) is { } s ? s : new string(' ', (int)Math.Clamp(Py.ToLong(width), 0, 256));
        var lines = text.Split('\n');
        var builder = new StringBuilder();
        for (var i = 0; i < lines.Length; i++)
        {
            if (i > 0)
            {
                builder.Append('\n');
            }
            if ((i > 0 || first) && (blank || lines[i].Length > 0))
            {
                builder.Append(prefix);
            }
            builder.Append(lines[i]);
        }
        return builder.ToString();
    }

    private static string Center(string text, int width)
    {
        if (width <= text.Length)
        {
            return text;
        }
        var total = width - text.Length;
        var left = total / 2 + (total & width & 1);
        return new string(' ', left) + text + new string(' ', total - left);
    }
}
