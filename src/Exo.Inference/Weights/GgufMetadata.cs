namespace Exo.Inference.Weights;

/// <summary>
/// A GGUF file's metadata: values are the CLR types of their GGUF types (uint, float, string, ...; arrays as T[],
/// arrays of arrays as object[]). The typed getters accept any integer or float width and say clearly what is wrong.
/// </summary>
public sealed class GgufMetadata(IReadOnlyDictionary<string, object> values, string source)
{
    public IReadOnlyDictionary<string, object> Values => values;

    public bool Contains(string key) => values.ContainsKey(key);

    private object Required(string key) =>
        values.TryGetValue(key, out var value) ? value : throw new ModelFormatException($"{source}: metadata '{key}' is missing");

    private ModelFormatException Wrong(string key, string expected) =>
        new($"{source}: metadata '{key}' must be {expected}, not {values[key].GetType().Name}");

    public string String(string key) => Required(key) as string ?? throw Wrong(key, "a string");

    public string? OptionalString(string key) => Contains(key) ? String(key) : null;

    public long Integer(string key) => ToInteger(Required(key)) ?? throw Wrong(key, "an integer");

    public long? OptionalInteger(string key) => Contains(key) ? Integer(key) : null;

    public uint UInt32(string key) => Integer(key) is var v and >= 0 and <= uint.MaxValue ? (uint)v : throw Wrong(key, "a uint32");

    /// <summary>A positive count that fits an int (dimensions, layer counts, token ids).</summary>
    public int Int(string key)
    {
        var value = Integer(key);
        return value is >= 0 and <= int.MaxValue ? (int)value : throw new ModelFormatException($"{source}: metadata '{key}' = {value} is out of range");
    }

    public int? OptionalInt(string key) => Contains(key) ? Int(key) : null;

    public double Float(string key) => Required(key) switch
    {
        float f => f,
        double d => d,
        var other => ToInteger(other) ?? throw Wrong(key, "a number"),
    };

    public double? OptionalFloat(string key) => Contains(key) ? Float(key) : null;

    public bool? OptionalBool(string key) => Contains(key) ? Required(key) as bool? ?? throw Wrong(key, "a bool") : null;

    public string[] StringArray(string key) => Required(key) as string[] ?? throw Wrong(key, "an array of strings");

    public float[] FloatArray(string key) => Required(key) switch
    {
        float[] f => f,
        double[] d => Array.ConvertAll(d, v => (float)v),
        _ => throw Wrong(key, "an array of floats"),
    };

    public int[] IntArray(string key) => Required(key) switch
    {
        int[] i => i,
        uint[] u when u.All(v => v <= int.MaxValue) => Array.ConvertAll(u, v => (int)v),
        byte[] b => Array.ConvertAll(b, v => (int)v),
        sbyte[] s => Array.ConvertAll(s, v => (int)v),
        _ => throw Wrong(key, "an array of 32-bit integers"),
    };

    private static long? ToInteger(object value) => value switch
    {
        byte v => v,
        sbyte v => v,
        ushort v => v,
        short v => v,
        uint v => v,
        int v => v,
        ulong v when v <= long.MaxValue => (long)v,
        long v => v,
        _ => null,
    };
}
