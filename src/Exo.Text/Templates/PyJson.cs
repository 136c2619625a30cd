using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Exo.Text.Templates;

/// <summary>
/// Python's <c>json.dumps</c> as transformers' <c>tojson</c> calls it (ensure_ascii=False): separators ", " and ": "
/// (or "," and ": " with an indent), insertion-ordered keys unless sorted, floats as Python prints them.
/// Also converts System.Text.Json input into template values.
/// </summary>
internal static class PyJson
{
    public static string Dumps(object? value, string? indent, string itemSeparator, string keySeparator, bool sortKeys)
    {
        var builder = new StringBuilder();
        Write(builder, value, indent, itemSeparator, keySeparator, sortKeys, 0);
        return builder.ToString();
    }

    private static void Write(StringBuilder builder, object? value, string? indent, string itemSeparator, string keySeparator, bool sortKeys, int depth)
    {
        switch (value)
        {
            case null:
                builder.Append("null");
                return;
            case bool b:
                builder.Append(b ? "true" : "false");
                return;
            case long l:
                builder.Append(l.ToString(CultureInfo.InvariantCulture));
                return;
            case double d:
                builder.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : Py.FloatRepr(d));
                return;
            case string s:
                WriteString(builder, s);
                return;
            case Markup m:
                WriteString(builder, m.Text);
                return;
            case List<object?> list:
                WriteContainer(builder, '[', ']', list.Count, indent, itemSeparator, depth, i =>
                    Write(builder, list[i], indent, itemSeparator, keySeparator, sortKeys, depth + 1));
                return;
            case OrderedDictionary<string, object?> dict:
                var keys = sortKeys ? dict.Keys.Order(StringComparer.Ordinal).ToList() : dict.Keys.ToList();
                WriteContainer(builder, '{', '}', keys.Count, indent, itemSeparator, depth, i =>
                {
                    WriteString(builder, keys[i]);
                    builder.Append(keySeparator);
                    Write(builder, dict[keys[i]], indent, itemSeparator, keySeparator, sortKeys, depth + 1);
                });
                return;
            case Namespace ns:
                Write(builder, ns.Attributes, indent, itemSeparator, keySeparator, sortKeys, depth);
                return;
            default:
                throw new TemplateRuntimeException(TemplateErrorKind.Type, $"Object of type {Py.TypeName(value)} is not JSON serializable");
        }
    }

    private static void WriteContainer(StringBuilder builder, char open, char close, int count, string? indent, string itemSeparator, int depth, Action<int> writeItem)
    {
        builder.Append(open);
        if (count == 0)
        {
            builder.Append(close);
            return;
        }
        for (var i = 0; i < count; i++)
        {
            if (i > 0)
            {
                builder.Append(itemSeparator);
            }
            if (indent is not null)
            {
                builder.Append('\n').Insert(builder.Length, indent, depth + 1);
            }
            writeItem(i);
        }
        if (indent is not null)
        {
            builder.Append('\n').Insert(builder.Length, indent, depth);
        }
        builder.Append(close);
    }

    private static void WriteString(StringBuilder builder, string s)
    {
        builder.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': builder.Append("\\\""); break;
                case '\\': builder.Append("\\\\"); break;
                case '\n': builder.Append("\\n"); break;
                case '\r': builder.Append("\\r"); break;
                case '\t': builder.Append("\\t"); break;
                case '\b': builder.Append("\\b"); break;
                case '\f': builder.Append("\\f"); break;
                default:
                    if (c < 0x20)
                    {
                        builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        builder.Append(c);
                    }
                    break;
            }
        }
        builder.Append('"');
    }

    /// <summary>JSON to template values: integers become long (double when out of range), other numbers double.</summary>
    public static object? FromJson(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.String => element.GetString(),
        JsonValueKind.Number => element.TryGetInt64(out var l) && !element.GetRawText().AsSpan().ContainsAny(".eE") ? l : (object)element.GetDouble(),
        JsonValueKind.Array => element.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.Object => ToDictionary(element),
        _ => throw new TemplateRuntimeException(TemplateErrorKind.Value, $"unsupported JSON value {element.ValueKind}"),
    };

    private static OrderedDictionary<string, object?> ToDictionary(JsonElement element)
    {
        var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject())
        {
            dict[property.Name] = FromJson(property.Value);
        }
        return dict;
    }
}
