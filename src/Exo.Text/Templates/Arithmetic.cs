namespace Exo.Text.Templates;

/// <summary>Python's binary arithmetic, with its TypeError messages.</summary>
internal static class Arithmetic
{
    public static object? Apply(string op, object? a, object? b)
    {
        if (a is Undefined ua)
        {
            throw ua.Error();
        }
        if (b is Undefined ub)
        {
            throw ub.Error();
        }
        if (Py.IsNumber(a) && Py.IsNumber(b))
        {
            return Numeric(op, a, b);
        }
        switch (op, a, b)
        {
            case ("+", Markup x, string or Markup):
                return new Markup(x.Text + Markup.Escape(b).Text);
            case ("+", string x, Markup y):
                return new Markup(Markup.EscapeText(x) + y.Text);
            case ("+", string x, string y):
                return x + y;
            case ("+", string, _):
                throw new TemplateRuntimeException(TemplateErrorKind.Type, $"can only concatenate str (not \"{Py.TypeName(b)}\") to str");
            case ("+", List<object?> x, List<object?> y):
                return x.Concat(y).ToList();
            case ("+", List<object?>, _):
                throw new TemplateRuntimeException(TemplateErrorKind.Type, $"can only concatenate list (not \"{Py.TypeName(b)}\") to list");
            case ("*", string x, long n):
                return Repeat(x, n);
            case ("*", long n, string x):
                return Repeat(x, n);
            case ("*", Markup x, long n):
                return new Markup(Repeat(x.Text, n));
            case ("*", long n, Markup x):
                return new Markup(Repeat(x.Text, n));
            case ("*", List<object?> x, long n):
                return Enumerable.Repeat(x, (int)Math.Max(0, Math.Min(n, 1_000_000))).SelectMany(l => l).ToList();
            case ("%", string format, _):
                return PercentFormat(format, b, escape: false);
            case ("%", Markup format, _):
                return new Markup(PercentFormat(format.Text, b, escape: true));
        }
        throw new TemplateRuntimeException(TemplateErrorKind.Type, $"unsupported operand type(s) for {op}: '{Py.TypeName(a)}' and '{Py.TypeName(b)}'");
    }

    private static string Repeat(string text, long count) =>
        count <= 0 ? "" : string.Concat(Enumerable.Repeat(text, (int)Math.Min(count, 10_000_000 / Math.Max(1, text.Length))));

    private static object Numeric(string op, object? a, object? b)
    {
        if (a is not double && b is not double && op != "/")
        {
            var x = Py.ToLong(a);
            var y = Py.ToLong(b);
            return op switch
            {
                "+" => (object)(x + y),
                "-" => x - y,
                "*" => x * y,
                "//" => y == 0 ? throw ZeroDivision() : FloorDiv(x, y),
                "%" => y == 0 ? throw ZeroDivision() : x - FloorDiv(x, y) * y,
                "**" => y >= 0 ? checked((long)Math.Pow(x, y)) : (object)Math.Pow(x, y),
                _ => throw new TemplateRuntimeException(TemplateErrorKind.Type, $"unsupported operator {op}"),
            };
        }
        var p = Py.ToDouble(a);
        var q = Py.ToDouble(b);
        return op switch
        {
            "+" => p + q,
            "-" => p - q,
            "*" => p * q,
            "/" => q == 0 ? throw ZeroDivision() : p / q,
            "//" => q == 0 ? throw ZeroDivision() : Math.Floor(p / q),
            "%" => q == 0 ? throw ZeroDivision() : p - Math.Floor(p / q) * q,
            "**" => Math.Pow(p, q),
            _ => throw new TemplateRuntimeException(TemplateErrorKind.Type, $"unsupported operator {op}"),
        };
    }

    private static long FloorDiv(long x, long y)
    {
        var quotient = x / y;
        return (x % y != 0) && ((x < 0) != (y < 0)) ? quotient - 1 : quotient;
    }

    private static TemplateRuntimeException ZeroDivision() => new(TemplateErrorKind.Value, "division by zero");

    /// <summary>
    /// printf-style <c>"%s" % value</c> for %s, %d, %i, %r and %%; a Markup format escapes what %s and %r insert
    /// (MarkupSafe's escape helper), leaving Markup arguments as they are.
    /// </summary>
    private static string PercentFormat(string format, object? args, bool escape)
    {
        var values = args is List<object?> list ? list : [args];
        var builder = new System.Text.StringBuilder();
        var next = 0;
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                builder.Append(format[i]);
                continue;
            }
            var spec = format[++i];
            if (spec == '%')
            {
                builder.Append('%');
                continue;
            }
            if (next >= values.Count)
            {
                throw new TemplateRuntimeException(TemplateErrorKind.Type, "not enough arguments for format string");
            }
            var value = values[next++];
            builder.Append(spec switch
            {
                's' => escape ? Markup.Escape(value).Text : Py.Str(value),
                'r' => escape ? Markup.Escape(Py.Repr(value)).Text : Py.Repr(value),
                'd' or 'i' => Py.ToLong(value).ToString(System.Globalization.CultureInfo.InvariantCulture),
                _ => throw new TemplateRuntimeException(TemplateErrorKind.Value, $"unsupported format character '{spec}'"),
            });
        }
        if (next < values.Count)
        {
            throw new TemplateRuntimeException(TemplateErrorKind.Type, "not all arguments converted during string formatting");
        }
        return builder.ToString();
    }
}
