using System.Text;
using System.Text.Json;

namespace Exo.Text.Constraints;

internal sealed partial class SchemaCompiler
{
    /// <summary>The characters of keys beyond the declared properties: printable ASCII that needs no escape.</summary>
    private static readonly ByteSet KeyCharacters = ByteSet.Range(0x20, 0x7E).Except(ByteSet.Of((byte)'"').With((byte)'\\'));

    private sealed record Property(string Name, JsonElement Schema, string Pointer, bool Required);

    /// <summary>
    /// An object: the declared properties in order, each optional one skippable, then (when additionalProperties
    /// allows) more properties with other keys. Rules F(i) and R(i) write properties i.. before and after the
    /// first one written, which decides whether a comma comes first.
    /// </summary>
    private int ObjectType(JsonElement schema, string pointer)
    {
        Refuse(schema, pointer, "patternProperties", "propertyNames", "minProperties", "maxProperties", "dependentRequired");
        if (schema.TryGetProperty("unevaluatedProperties", out var unevaluated) && unevaluated.ValueKind != JsonValueKind.False)
            throw GrammarException.At(Child(pointer, "unevaluatedProperties"), "only 'unevaluatedProperties': false is supported");
        var required = Required(schema, pointer);
        var extra = Additional(schema, pointer);
        var properties = new List<Property>();
        if (schema.TryGetProperty("properties", out var declared))
        {
            if (declared.ValueKind != JsonValueKind.Object) throw GrammarException.At(Child(pointer, "properties"), "'properties' must be an object");
            foreach (var p in declared.EnumerateObject())
            {
                var isRequired = required.Contains(p.Name);
                // An optional property whose schema is false can only be left out.
                if (isRequired || p.Value.ValueKind != JsonValueKind.False) properties.Add(new Property(p.Name, p.Value, Child(Child(pointer, "properties"), p.Name), isRequired));
            }
        }
        var names = properties.Select(p => p.Name).ToHashSet();
        foreach (var name in required.Where(n => !names.Contains(n)).ToList())
        {
            if (extra is not { } other) throw GrammarException.At(Child(pointer, "required"), $"'{name}' is required but not declared, and no other property is allowed");
            properties.Add(new Property(name, other, Child(pointer, "additionalProperties"), true));
            names.Add(name);
        }

        var ws = _json.Whitespace;
        var first = _g.Rule(pointer, _g.Seq());
        var rest = _g.Rule(pointer, _g.Seq());
        if (extra is { } additional)
        {
            var member = Member(ExtraKey(names, Child(pointer, "additionalProperties")), additional, Child(pointer, "additionalProperties"));
            _g.Add(rest, _g.Seq().Text(",").Ref(ws).Ref(member).Ref(rest));
            _g.Add(first, _g.Seq().Ref(member).Ref(rest));
        }
        for (var i = properties.Count - 1; i >= 0; i--)
        {
            var p = properties[i];
            var key = _g.Seq().Utf8(JsonLexicon.Canonical(w => w.WriteStringValue(p.Name)));
            var member = Member(_g.Rule(p.Pointer, key), p.Schema, p.Pointer);
            var nextFirst = _g.Rule(pointer, _g.Seq().Ref(member).Ref(rest));
            var nextRest = _g.Rule(pointer, _g.Seq().Text(",").Ref(ws).Ref(member).Ref(rest));
            if (!p.Required)
            {
                _g.Add(nextFirst, _g.Seq().Ref(first));
                _g.Add(nextRest, _g.Seq().Ref(rest));
            }
            (first, rest) = (nextFirst, nextRest);
        }
        return _g.Rule(pointer, _g.Seq().Text("{").Ref(ws).Ref(first).Text("}"));
    }

    /// <summary>A key, a colon and a value, each followed by optional whitespace.</summary>
    private int Member(int key, JsonElement value, string pointer)
    {
        var ws = _json.Whitespace;
        return _g.Rule(pointer, _g.Seq().Ref(key).Ref(ws).Text(":").Ref(ws).Ref(Schema(value, pointer)).Ref(ws));
    }

    private static HashSet<string> Required(JsonElement schema, string pointer)
    {
        if (!schema.TryGetProperty("required", out var list)) return [];
        var at = Child(pointer, "required");
        if (list.ValueKind != JsonValueKind.Array) throw GrammarException.At(at, "'required' must be a list of strings");
        return [.. list.EnumerateArray().Select(n => n.ValueKind == JsonValueKind.String ? n.GetString()! : throw GrammarException.At(at, "'required' must be a list of strings"))];
    }

    /// <summary>The schema of properties beyond the declared ones; null when none may be written.</summary>
    private static JsonElement? Additional(JsonElement schema, string pointer)
    {
        if (!schema.TryGetProperty("additionalProperties", out var additional)) return null;
        return additional.ValueKind switch
        {
            JsonValueKind.False => null,
            JsonValueKind.True or JsonValueKind.Object => additional,
            _ => throw GrammarException.At(Child(pointer, "additionalProperties"), "'additionalProperties' must be a boolean or a schema"),
        };
    }

    /// <summary>
    /// A quoted key of <see cref="KeyCharacters"/> that is none of <paramref name="names"/>: a trie of the names whose
    /// nodes each allow ending the key only where no name ends, and any character that leaves the trie.
    /// </summary>
    private int ExtraKey(IReadOnlyCollection<string> names, string pointer)
    {
        var free = _g.Rule(pointer);
        _g.Add(free, _g.Seq().Text("\""));
        _g.Add(free, _g.Seq().Bytes(KeyCharacters).Ref(free));
        var keys = names.Select(n => Encoding.UTF8.GetBytes(n)).Where(n => n.All(b => KeyCharacters.Contains(b))).ToList();
        var root = _g.Rule(pointer);
        var work = new Stack<(int Rule, int Depth, List<byte[]> Names)>();
        work.Push((root, 0, keys));
        while (work.Count > 0)
        {
            var (rule, depth, group) = work.Pop();
            if (!group.Any(n => n.Length == depth)) _g.Add(rule, _g.Seq().Text("\""));
            var children = group.Where(n => n.Length > depth).GroupBy(n => n[depth]).ToList();
            var others = KeyCharacters;
            foreach (var child in children)
            {
                var next = _g.Rule(pointer);
                _g.Add(rule, _g.Seq().Bytes(ByteSet.Of(child.Key)).Ref(next));
                work.Push((next, depth + 1, child.ToList()));
                others = others.Except(ByteSet.Of(child.Key));
            }
            if (!others.IsEmpty) _g.Add(rule, _g.Seq().Bytes(others).Ref(free));
        }
        return _g.Rule(pointer, _g.Seq().Text("\"").Ref(root));
    }
}
