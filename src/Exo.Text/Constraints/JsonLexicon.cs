using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Exo.Text.Constraints;

/// <summary>
/// The pieces of JSON text that schemas share, each a rule built on first use: bounded whitespace, string
/// characters, numbers, and any value. Numbers are bounded too (16 integer digits, 16 fraction digits, a two-digit
/// exponent) so that every number the grammar writes reads back as a finite double.
/// </summary>
internal sealed class JsonLexicon(GrammarBuilder g)
{
    /// <summary>The most spaces after a newline: enough to indent ten levels by two.</summary>
    public const int MaxIndent = 20;
    public const int MaxIntegerDigits = 16;
    private const int MaxFractionDigits = 16;
    private const int MaxExponentDigits = 2;

    private static readonly ByteSet Continuation = ByteSet.Range(0x80, 0xBF);
    private static readonly ByteSet Digit = ByteSet.Range((byte)'0', (byte)'9');
    private static readonly ByteSet Hex = Digit.Union(ByteSet.Range((byte)'a', (byte)'f')).Union(ByteSet.Range((byte)'A', (byte)'F'));
    private static readonly JsonWriterOptions CanonicalOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private int? _whitespace;
    private int? _character;
    private int? _string;
    private int? _integer;
    private int? _number;
    private int? _boolean;
    private int? _null;
    private int? _value;
    private int? _object;

    /// <summary>Nothing, one space, or a newline and up to <see cref="MaxIndent"/> spaces: never an endless run.</summary>
    public int Whitespace => _whitespace ??= g.Rule("whitespace",
        g.Seq(), g.Seq().Text(" "), g.Seq().Text("\n").Ref(Repeat("indent", s => s.Text(" "), 0, MaxIndent)));

    /// <summary>One character of a string's content, as UTF-8 (well-formed, no surrogates) or an escape.</summary>
    public int Character => _character ??= BuildCharacter();

    public int String => _string ??= StringOf(0, null, "string");

    public int Integer => _integer ??= g.Rule("integer", g.Seq().Ref(Optional("sign", "-")).Ref(IntegerDigits()));

    public int Number => _number ??= g.Rule("number", g.Seq().Ref(Integer)
        .Ref(g.Rule("fraction", g.Seq(), g.Seq().Text(".").Ref(Repeat("fraction digits", s => s.Bytes(Digit), 1, MaxFractionDigits))))
        .Ref(g.Rule("exponent", g.Seq(), g.Seq().Bytes(ByteSet.Of((byte)'e').With((byte)'E'))
            .Ref(g.Rule("exponent sign", g.Seq(), g.Seq().Bytes(ByteSet.Of((byte)'+').With((byte)'-'))))
            .Ref(Repeat("exponent digits", s => s.Bytes(Digit), 1, MaxExponentDigits)))));

    public int Boolean => _boolean ??= g.Rule("boolean", g.Seq().Text("true"), g.Seq().Text("false"));

    public int Null => _null ??= g.Rule("null", g.Seq().Text("null"));

    /// <summary>Any JSON value.</summary>
    public int Value => _value ??= BuildValue();

    /// <summary>Any JSON object.</summary>
    public int Object => _object ??= BuildObject();

    /// <summary>A string of <paramref name="min"/> to <paramref name="max"/> characters (unbounded when null).</summary>
    public int StringOf(int min, int? max, string pointer) =>
        g.Rule(pointer, g.Seq().Text("\"").Ref(Repeat(pointer, s => s.Ref(Character), min, max)).Text("\""));

    /// <summary>
    /// <paramref name="min"/> to <paramref name="max"/> copies of an item (unbounded when null), as a chain of rules
    /// whose calls are all in tail position, so the parse stack stays flat however many items come.
    /// </summary>
    public int Repeat(string pointer, Func<Sequence, Sequence> item, int min, int? max)
    {
        int next;
        if (max is null)
        {
            next = g.Rule(pointer);
            g.Add(next, g.Seq());
            g.Add(next, item(g.Seq()).Ref(next));
        }
        else
        {
            next = g.Rule(pointer, g.Seq());
            for (var k = 0; k < max.Value - min; k++) next = g.Rule(pointer, g.Seq(), item(g.Seq()).Ref(next));
        }
        for (var k = 0; k < min; k++) next = g.Rule(pointer, item(g.Seq()).Ref(next));
        return next;
    }

    /// <summary>The value's JSON text, compact, with only the escapes JSON requires.</summary>
    public static byte[] Canonical(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, CanonicalOptions)) write(writer);
        return buffer.WrittenSpan.ToArray();
    }

    private int Optional(string name, string text) => g.Rule(name, g.Seq(), g.Seq().Text(text));

    private int IntegerDigits() => g.Rule("integer digits", g.Seq().Text("0"),
        g.Seq().Bytes(ByteSet.Range((byte)'1', (byte)'9')).Ref(Repeat("digits", s => s.Bytes(Digit), 0, MaxIntegerDigits - 1)));

    private int BuildCharacter()
    {
        var plain = ByteSet.Range(0x20, 0x7F).Except(ByteSet.Of((byte)'"').With((byte)'\\'));
        var hex = Hex.Except(ByteSet.Of((byte)'d').With((byte)'D'));
        var escape = g.Rule("escape",
            g.Seq().Bytes(ByteSet.Of((byte)'"').With((byte)'\\').With((byte)'/').With((byte)'b').With((byte)'f').With((byte)'n').With((byte)'r').With((byte)'t')),
            // \uXXXX, but not a surrogate (D800-DFFF): a lone one is not a character.
            g.Seq().Text("u").Bytes(hex).Bytes(Hex).Bytes(Hex).Bytes(Hex),
            g.Seq().Text("u").Bytes(ByteSet.Of((byte)'d').With((byte)'D')).Bytes(ByteSet.Range((byte)'0', (byte)'7')).Bytes(Hex).Bytes(Hex));
        return g.Rule("character",
            g.Seq().Bytes(plain),
            g.Seq().Text("\\").Ref(escape),
            g.Seq().Bytes(ByteSet.Range(0xC2, 0xDF)).Bytes(Continuation),
            g.Seq().Bytes(ByteSet.Of(0xE0)).Bytes(ByteSet.Range(0xA0, 0xBF)).Bytes(Continuation),
            g.Seq().Bytes(ByteSet.Range(0xE1, 0xEC).Union(ByteSet.Range(0xEE, 0xEF))).Bytes(Continuation).Bytes(Continuation),
            g.Seq().Bytes(ByteSet.Of(0xED)).Bytes(ByteSet.Range(0x80, 0x9F)).Bytes(Continuation),
            g.Seq().Bytes(ByteSet.Of(0xF0)).Bytes(ByteSet.Range(0x90, 0xBF)).Bytes(Continuation).Bytes(Continuation),
            g.Seq().Bytes(ByteSet.Range(0xF1, 0xF3)).Bytes(Continuation).Bytes(Continuation).Bytes(Continuation),
            g.Seq().Bytes(ByteSet.Of(0xF4)).Bytes(ByteSet.Range(0x80, 0x8F)).Bytes(Continuation).Bytes(Continuation));
    }

    private int BuildValue()
    {
        var value = g.Rule("value");
        _value = value;
        var array = g.Rule("array");
        var more = g.Rule("array items");
        g.Add(more, g.Seq());
        g.Add(more, g.Seq().Text(",").Ref(Whitespace).Ref(value).Ref(Whitespace).Ref(more));
        g.Add(array, g.Seq().Text("[").Ref(Whitespace).Text("]"));
        g.Add(array, g.Seq().Text("[").Ref(Whitespace).Ref(value).Ref(Whitespace).Ref(more).Text("]"));
        foreach (var rule in (ReadOnlySpan<int>)[Object, array, String, Number, Boolean, Null]) g.Add(value, g.Seq().Ref(rule));
        return value;
    }

    private int BuildObject()
    {
        var result = g.Rule("object");
        _object = result;
        var member = g.Rule("member", g.Seq().Ref(String).Ref(Whitespace).Text(":").Ref(Whitespace).Ref(Value).Ref(Whitespace));
        var more = g.Rule("members");
        g.Add(more, g.Seq());
        g.Add(more, g.Seq().Text(",").Ref(Whitespace).Ref(member).Ref(more));
        g.Add(result, g.Seq().Text("{").Ref(Whitespace).Text("}"));
        g.Add(result, g.Seq().Text("{").Ref(Whitespace).Ref(member).Ref(more).Text("}"));
        return result;
    }
}
