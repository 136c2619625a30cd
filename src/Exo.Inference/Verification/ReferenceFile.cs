using System.Text.Json;

namespace Exo.Inference.Verification;

/// <summary>One case of a reference file: a prompt and what transformers computed for it in f64.</summary>
public sealed record ReferenceCase(
    int[] InputIds,
    float[] Logits,          // [tokens, vocab]
    int Vocab,
    float[][] HiddenStates,  // L + 1 entries of [tokens, hidden]: entry i < L is layer i's input, entry L the final norm
    int[] GreedyNewTokens);

/// <summary>
/// reference.json + reference.bin as written by the fixture tools: JSON metadata naming f32 little-endian arrays by
/// offset and shape in the binary file. Offsets and shapes are checked against the file before anything is read.
/// </summary>
public sealed record ReferenceFile(string Family, IReadOnlyList<ReferenceCase> Cases)
{
    public static ReferenceFile Load(string directory)
    {
        var jsonPath = Path.Combine(directory, "reference.json");
        var binPath = Path.Combine(directory, "reference.bin");
        if (!File.Exists(jsonPath)) throw new ModelFormatException($"{jsonPath}: missing (verify needs a reference.json made by transformers)");
        if (!File.Exists(binPath)) throw new ModelFormatException($"{binPath}: missing");

        var bin = File.ReadAllBytes(binPath);
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(jsonPath));
            var root = document.RootElement;
            var family = root.TryGetProperty("family", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString()! : "";
            if (!root.TryGetProperty("cases", out var cases) || cases.ValueKind != JsonValueKind.Array)
                throw new ModelFormatException($"{jsonPath}: no cases array");

            var result = new List<ReferenceCase>();
            foreach (var c in cases.EnumerateArray())
            {
                var where = $"{jsonPath}: case {result.Count}";
                var ids = IntArray(c, "input_ids", where);
                var logits = ReadArray(c.GetProperty("logits"), bin, where + " logits", out var logitShape);
                if (logitShape is not [var rows, var vocab] || rows != ids.Length)
                    throw new ModelFormatException($"{where}: logits shape [{string.Join(", ", logitShape)}] does not match {ids.Length} input ids");
                var hidden = c.GetProperty("hidden_states").EnumerateArray()
                    .Select((h, i) => ReadArray(h, bin, $"{where} hidden_states[{i}]", out _)).ToArray();
                result.Add(new ReferenceCase(ids, logits, vocab, hidden, IntArray(c, "greedy_new_tokens", where)));
            }

            return new ReferenceFile(family, result);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new ModelFormatException($"{jsonPath}: malformed ({e.Message})", e);
        }
    }

    private static int[] IntArray(JsonElement element, string name, string where) =>
        element.TryGetProperty(name, out var array) && array.ValueKind == JsonValueKind.Array
            ? array.EnumerateArray().Select(e => e.GetInt32()).ToArray()
            : throw new ModelFormatException($"{where}: no {name} array");

    private static float[] ReadArray(JsonElement spec, byte[] bin, string where, out int[] shape)
    {
        var dtype = spec.GetProperty("dtype").GetString();
        if (dtype != "f32") throw new ModelFormatException($"{where}: dtype {dtype}; only f32 is written by the fixture tools");
        shape = spec.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var offset = spec.GetProperty("offset").GetInt64();
        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ModelFormatException($"{where}: negative dimension");
            count *= d;
        }

        if (offset < 0 || count > int.MaxValue / 4 || offset + count * 4 > bin.Length)
            throw new ModelFormatException($"{where}: [{offset}, {offset + count * 4}) lies outside reference.bin ({bin.Length} bytes)");
        var values = new float[count];
        Buffer.BlockCopy(bin, (int)offset, values, 0, (int)count * 4);
        return values;
    }
}
