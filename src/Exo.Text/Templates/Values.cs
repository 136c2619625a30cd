using System.Globalization;
using System.Text;

namespace Exo.Text.Templates;

/// <summary>Jinja's Undefined: prints as empty, is false, iterates as empty; most other uses are errors.</summary>
internal sealed class Undefined(string name)
{
    public string Name { get; } = name;

    public TemplateRuntimeException Error() => new(TemplateErrorKind.Undefined, $"'{Name}' is undefined");
}

/// <summary>The object <c>namespace()</c> makes: the one thing a template may assign attributes on.</summary>
internal sealed class Namespace
{
    public OrderedDictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>Anything a template can call: globals, filters exposed as functions, bound methods and macros.</summary>
internal sealed class Callable(string name, Func<List<object?>, Dictionary<string, object?>, object?> invoke)
{
    public string Name { get; } = name;

    public object? Invoke(List<object?> args, Dictionary<string, object?> kwargs) => invoke(args, kwargs);
}

/// <summary>Python semantics for the values templates handle: None, bool, long, double, string, list, dict.</summary>
internal static class Py
{
    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        Markup => "Markup",
        List<object?> => "list",
        OrderedDictionary<string, object?> => "dict",
        Undefined => "Undefined",
        Namespace => "Namespace",
        Callable => "function",
        _ => value.GetType().Name,
    };

    public static bool Truthy(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        Markup m => m.Text.Length > 0,
        List<object?> list => list.Count > 0,
        OrderedDictionary<string, object?> dict => dict.Count > 0,
        _ => true,
    };

    /// <summary>The text of a str, Markup included (a Markup is a str in Python); null for other values.</summary>
    public static string? Text(object? value) => value switch
    {
        string s => s,
        Markup m => m.Text,
        _ => null,
    };

    /// <summary>Python's <c>str()</c>, with Undefined as the empty string.</summary>
    public static string Str(object? value) => value switch
    {
        string s => s,
        Markup m => m.Text,
        Undefined => "",
        _ => Repr(value),
    };

    public static string Repr(object? value)
    {
        var builder = new StringBuilder();
        AppendRepr(builder, value);
        return builder.ToString();
    }

    private static void AppendRepr(StringBuilder builder, object? value)
    {
        switch (value)
        {
            case null:
                builder.Append("None");
                break;
            case bool b:
                builder.Append(b ? "True" : "False");
                break;
            case long l:
                builder.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                builder.Append(FloatRepr(d));
                break;
            case string s:
                AppendStringRepr(builder, s);
                break;
            case Undefined:
                break;
            case Markup m:
                builder.Append("Markup(");
                AppendStringRepr(builder, m.Text);
                builder.Append(')');
                break;
            case List<object?> list:
                builder.Append('[');
                for (var i = 0; i < list.Count; i++)
                {
                    if (i > 0)
                    {
                        builder.Append(", ");
                    }
                    AppendRepr(builder, list[i]);
                }
                builder.Append(']');
                break;
            case OrderedDictionary<string, object?> dict:
                builder.Append('{');
                var first = true;
                foreach (var (key, item) in dict)
                {
                    if (!first)
                    {
                        builder.Append(", ");
                    }
                    first = false;
                    AppendStringRepr(builder, key);
                    builder.Append(": ");
                    AppendRepr(builder, item);
                }
                builder.Append('}');
                break;
            case Namespace:
                builder.Append("<Namespace>");
                break;
            case Callable c:
                builder.Append("<function ").Append(c.Name).Append('>');
                break;
            default:
                builder.Append(value);
                break;
        }
    }

    private static void AppendStringRepr(StringBuilder builder, string s)
    {
        var quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        builder.Append(quote);
        foreach (var c in s)
        {
            switch (c)
            {
                case '\\': builder.Append("\\\\"); break;
                case '\n': builder.Append("\\n"); break;
                case '\r': builder.Append("\\r"); break;
                case '\t': builder.Append("\\t"); break;
                default:
                    if (c == quote)
                    {
                        builder.Append('\\').Append(c);
                    }
                    else if (c < 0x20 || c == 0x7F)
                    {
                        builder.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        builder.Append(c);
                    }
                    break;
            }
        }
        builder.Append(quote);
    }

    /// <summary>Python's <c>repr(float)</c>: shortest round-trip digits, fixed notation for exponents -4..15, else "1e+16".</summary>
    public static string FloatRepr(double value)
    {
        if (double.IsNaN(value))
        {
            return "nan";
        }
        if (double.IsInfinity(value))
        {
            return value > 0 ? "inf" : "-inf";
        }
        var text = value.ToString("R", CultureInfo.InvariantCulture);
        var negative = text.StartsWith('-');
        if (negative)
        {
            text = text[1..];
        }
        var exponent = 0;
        var e = text.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(text.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            text = text[..e];
        }
        var dot = text.IndexOf('.');
        var digits = dot < 0 ? text : text.Remove(dot, 1);
        var point = (dot < 0 ? text.Length : dot) + exponent;
        var lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0')
        {
            lead++;
        }
        digits = digits[lead..];
        point -= lead;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0)
        {
            return negative ? "-0.0" : "0.0";
        }
        var scientific = point - 1;
        string body;
        if (scientific is >= -4 and < 16)
        {
            body = point <= 0
                ? "0." + new string('0', -point) + digits
                : point >= digits.Length
                    ? digits + new string('0', point - digits.Length) + ".0"
                    : digits[..point] + "." + digits[point..];
        }
        else
        {
            var mantissa = digits.Length > 1 ? digits[0] + "." + digits[1..] : digits;
            body = mantissa + "e" + (scientific < 0 ? "-" : "+") + Math.Abs(scientific).ToString("00", CultureInfo.InvariantCulture);
        }
        return negative ? "-" + body : body;
    }

    public static bool IsNumber(object? value) => value is long or double or bool;

    public static double ToDouble(object? value) => value switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new InvalidCastException(),
    };

    public static bool Eq(object? left, object? right)
    {
        if (IsNumber(left) && IsNumber(right))
        {
            return left is double || right is double ? ToDouble(left) == ToDouble(right) : ToLong(left) == ToLong(right);
        }
        return (left, right) switch
        {
            (null, null) => true,
            (Undefined, Undefined) => true,
            _ when Text(left) is { } a && Text(right) is { } b => a == b,
            (List<object?> a, List<object?> b) => a.Count == b.Count && a.Zip(b).All(p => Eq(p.First, p.Second)),
            (OrderedDictionary<string, object?> a, OrderedDictionary<string, object?> b) =>
                a.Count == b.Count && a.All(p => b.TryGetValue(p.Key, out var v) && Eq(p.Value, v)),
            _ => ReferenceEquals(left, right),
        };
    }

    public static long ToLong(object? value) => value switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => (long)ToDouble(value),
    };

    /// <summary>Python ordering for numbers, strings and lists; other pairs are a TypeError.</summary>
    public static int Compare(object? left, object? right, string op)
    {
        if (IsNumber(left) && IsNumber(right))
        {
            return left is double || right is double ? ToDouble(left).CompareTo(ToDouble(right)) : ToLong(left).CompareTo(ToLong(right));
        }
        if (Text(left) is { } a && Text(right) is { } b)
        {
            return string.CompareOrdinal(a, b);
        }
        if (left is List<object?> x && right is List<object?> y)
        {
            for (var i = 0; i < Math.Min(x.Count, y.Count); i++)
            {
                if (!Eq(x[i], y[i]))
                {
                    return Compare(x[i], y[i], op);
                }
            }
            return x.Count.CompareTo(y.Count);
        }
        if (left is Undefined u)
        {
            throw u.Error();
        }
        if (right is Undefined v)
        {
            throw v.Error();
        }
        throw new TemplateRuntimeException(TemplateErrorKind.Type, $"'{op}' not supported between instances of '{TypeName(left)}' and '{TypeName(right)}'");
    }

    /// <summary>Python's <c>in</c>: substring, list membership or dict key.</summary>
    public static bool Contains(object? container, object? item) => container switch
    {
        string or Markup when Text(item) is { } sub => Text(container)!.Contains(sub, StringComparison.Ordinal),
        string or Markup => throw new TemplateRuntimeException(TemplateErrorKind.Type, $"'in <string>' requires string as left operand, not {TypeName(item)}"),
        List<object?> list => list.Any(x => Eq(x, item)),
        OrderedDictionary<string, object?> dict => item is string key && dict.ContainsKey(key),
        Namespace ns => item is string key && ns.Attributes.ContainsKey(key),
        Undefined u => throw u.Error(),
        _ => throw new TemplateRuntimeException(TemplateErrorKind.Type, $"argument of type '{TypeName(container)}' is not iterable"),
    };

    /// <summary>The items a for loop or filter iterates: list items, dict keys, string characters.</summary>
    public static List<object?> Iterate(object? value) => value switch
    {
        List<object?> list => list,
        OrderedDictionary<string, object?> dict => dict.Keys.Cast<object?>().ToList(),
        string s => TextElements(s),
        Markup m => TextElements(m.Text),
        Undefined => [],
        Namespace ns => ns.Attributes.Keys.Cast<object?>().ToList(),
        _ => throw new TemplateRuntimeException(TemplateErrorKind.Type, $"'{TypeName(value)}' object is not iterable"),
    };

    /// <summary>A string's characters as Python sees them: code points, so a surrogate pair stays one item.</summary>
    public static List<object?> TextElements(string s)
    {
        var result = new List<object?>(s.Length);
        foreach (var rune in s.EnumerateRunes())
        {
            result.Add(rune.ToString());
        }
        return result;
    }

    public static int Length(object? value) => value switch
    {
        string s => s.EnumerateRunes().Count(),
        Markup m => m.Text.EnumerateRunes().Count(),
        List<object?> list => list.Count,
        OrderedDictionary<string, object?> dict => dict.Count,
        Undefined => 0,
        _ => throw new TemplateRuntimeException(TemplateErrorKind.Type, $"object of type '{TypeName(value)}' has no len()"),
    };
}
