using System.Globalization;
using System.Text;

namespace Exo.Text.Templates;

/// <summary>Attribute and item access, filters, tests and the methods of str, dict and list that templates call.</summary>
internal static class Builtins
{
    public static object? GetAttribute(object? target, string name)
    {
        switch (target)
        {
            case Undefined u:
                throw u.Error();
            case OrderedDictionary<string, object?> dict:
                if (name is "items" or "keys" or "values" or "get")
                {
                    return DictMethod(dict, name);
                }
                return dict.TryGetValue(name, out var value) ? value : new Undefined(name);
            case Namespace ns:
                return ns.Attributes.TryGetValue(name, out var attribute) ? attribute : new Undefined(name);
            case string s:
                return (object?)StringMethods.Get(s, name) ?? new Undefined(name);
            case Markup m:
                return (object?)m.Method(name) ?? new Undefined(name);
            case List<object?> list:
                return (object?)ListMethod(list, name) ?? new Undefined(name);
            default:
                return new Undefined(name);
        }
    }

    public static object? GetItem(object? target, object? key)
    {
        switch (target)
        {
            case Undefined u:
                throw u.Error();
            case OrderedDictionary<string, object?> dict:
                return Py.Text(key) is { } k && dict.TryGetValue(k, out var value) ? value : new Undefined(Py.Str(key));
            case Namespace ns:
                return Py.Text(key) is { } a && ns.Attributes.TryGetValue(a, out var attribute) ? attribute : new Undefined(Py.Str(key));
            case List<object?> list when key is long or bool:
                var index = Py.ToLong(key);
                index = index < 0 ? index + list.Count : index;
                return index >= 0 && index < list.Count ? list[(int)index] : new Undefined($"[{key}]");
            case string or Markup when key is long or bool:
                var chars = Py.TextElements(Py.Text(target)!);
                var i = Py.ToLong(key);
                i = i < 0 ? i + chars.Count : i;
                return i >= 0 && i < chars.Count ? Markup.KeepSafe(target, (string)chars[(int)i]!) : new Undefined($"[{key}]");
            case not null when Py.Text(key) is { } name:
                return GetAttribute(target, name);
            default:
                return new Undefined($"[{Py.Str(key)}]");
        }
    }

    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        var items = target switch
        {
            List<object?> list => list,
            string or Markup => Py.Iterate(target),
            Undefined u => throw u.Error(),
            _ => throw new TemplateRuntimeException(TemplateErrorKind.Type, $"'{Py.TypeName(target)}' object is not subscriptable"),
        };
        var count = items.Count;
        var stride = step is null ? 1 : Py.ToLong(step);
        if (stride == 0)
        {
            throw new TemplateRuntimeException(TemplateErrorKind.Value, "slice step cannot be zero");
        }
        long Clamp(object? bound, long fallback)
        {
            if (bound is null)
            {
                return fallback;
            }
            var value = Py.ToLong(bound);
            if (value < 0)
            {
                value += count;
            }
            return stride > 0 ? Math.Clamp(value, 0, count) : Math.Clamp(value, -1, count - 1);
        }
        var from = Clamp(start, stride > 0 ? 0 : count - 1);
        var to = Clamp(stop, stride > 0 ? count : -1);
        var result = new List<object?>();
        for (var i = from; stride > 0 ? i < to : i > to; i += stride)
        {
            result.Add(items[(int)i]);
        }
        return Py.Text(target) is null ? result : Markup.KeepSafe(target, string.Concat(result.Cast<string>()));
    }

    private static Callable DictMethod(OrderedDictionary<string, object?> dict, string name) => name switch
    {
        "items" => new Callable("items", (_, _) => Items(dict)),
        "keys" => new Callable("keys", (_, _) => dict.Keys.Cast<object?>().ToList()),
        "values" => new Callable("values", (_, _) => dict.Values.ToList()),
        _ => new Callable("get", (args, _) =>
            args.Count > 0 && args[0] is string key && dict.TryGetValue(key, out var value) ? value : args.Count > 1 ? args[1] : null),
    };

    private static List<object?> Items(OrderedDictionary<string, object?> dict) =>
        dict.Select(pair => (object?)new List<object?> { pair.Key, pair.Value }).ToList();

    private static Callable? ListMethod(List<object?> list, string name) => name switch
    {
        "index" => new Callable("index", (args, _) =>
        {
            var position = list.FindIndex(x => Py.Eq(x, args.FirstOrDefault()));
            return position >= 0 ? (long)position : throw new TemplateRuntimeException(TemplateErrorKind.Value, "value is not in list");
        }),
        "count" => new Callable("count", (args, _) => (long)list.Count(x => Py.Eq(x, args.FirstOrDefault()))),
        "append" or "extend" or "insert" or "pop" or "remove" or "clear" or "sort" or "reverse" =>
            new Callable(name, (_, _) => throw new TemplateRuntimeException(TemplateErrorKind.Security, $"access to attribute '{name}' of 'list' object is unsafe.")),
        _ => null,
    };

    public static bool ApplyTest(string name, object? value, List<object?> args, Interpreter interpreter)
    {
        object? Arg() => args.Count > 0 ? args[0] : throw new TemplateRuntimeException(TemplateErrorKind.Type, $"test '{name}' needs an argument");
        return name switch
        {
            "defined" => value is not Undefined,
            "undefined" => value is Undefined,
            "none" => value is null,
            "string" => value is string or Markup,
            "number" => value is long or double or bool,
            "integer" => value is long,
            "float" => value is double,
            "boolean" => value is bool,
            "true" => value is true,
            "false" => value is false,
            "mapping" => value is OrderedDictionary<string, object?>,
            "iterable" => value is string or Markup or List<object?> or OrderedDictionary<string, object?> or Undefined,
            "sequence" => value is string or Markup or List<object?> or OrderedDictionary<string, object?>,
            "callable" => value is Callable,
            "sameas" => ReferenceEquals(value, Arg()) || (value is null && Arg() is null) || (value is bool b && Arg() is bool c && b == c),
            "eq" or "equalto" or "==" => Py.Eq(value, Arg()),
            "ne" or "!=" => !Py.Eq(value, Arg()),
            "lt" or "lessthan" or "<" => Py.Compare(value, Arg(), "<") < 0,
            "le" or "<=" => Py.Compare(value, Arg(), "<=") <= 0,
            "gt" or "greaterthan" or ">" => Py.Compare(value, Arg(), ">") > 0,
            "ge" or ">=" => Py.Compare(value, Arg(), ">=") >= 0,
            "in" => Py.Contains(Arg(), value),
            "odd" => Py.ToLong(value) % 2 != 0,
            "even" => Py.ToLong(value) % 2 == 0,
            "divisibleby" => Py.ToLong(value) % Py.ToLong(Arg()) == 0,
            "lower" => Py.Text(value) is { } s && s == s.ToLowerInvariant(),
            "upper" => Py.Text(value) is { } t && t == t.ToUpperInvariant(),
            "filter" => Arg() is string f && Filters.Exists(f),
            "test" => Arg() is string g && TestNames.Contains(g),
            _ => throw new TemplateRuntimeException(TemplateErrorKind.Syntax, $"no test named '{name}'"),
        };
    }

    private static readonly HashSet<string> TestNames =
    [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false", "mapping",
        "iterable", "sequence", "callable", "sameas", "eq", "equalto", "ne", "lt", "le", "gt", "ge", "in", "odd", "even",
        "divisibleby", "lower", "upper", "filter", "test",
    ];

    public static object? ApplyFilter(string name, object? value, List<object?> args, Dictionary<string, object?> kwargs, Interpreter interpreter) =>
        Filters.Apply(name, value, new Arguments(args, kwargs), interpreter);
}

/// <summary>Positional and keyword arguments, read the way Python binds them.</summary>
internal sealed record Arguments(List<object?> Positional, Dictionary<string, object?> Keywords)
{
    public object? Get(int position, string name, object? fallback = null) =>
        position < Positional.Count ? Positional[position] : Keywords.TryGetValue(name, out var value) ? value : fallback;

    public bool Has(int position, string name) => position < Positional.Count || Keywords.ContainsKey(name);
}
