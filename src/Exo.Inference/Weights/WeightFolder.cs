using System.Text.Json;

namespace Exo.Inference.Weights;

/// <summary>
/// The safetensors weights of a Hugging Face model folder: a single model.safetensors, or shards listed in
/// model.safetensors.index.json. Shard files are opened on first use, so a stage maps only the files that hold its tensors.
/// </summary>
public sealed class WeightFolder : IWeightSource
{
    private const string SingleFile = "model.safetensors";
    private const string IndexFile = "model.safetensors.index.json";

    private readonly string _directory;
    private readonly Dictionary<string, string>? _weightMap;
    private readonly Dictionary<string, SafetensorsFile> _open = new(StringComparer.Ordinal);

    private WeightFolder(string directory, Dictionary<string, string>? weightMap)
    {
        _directory = directory;
        _weightMap = weightMap;
    }

    public static WeightFolder Open(string directory)
    {
        var index = System.IO.Path.Combine(directory, IndexFile);
        if (File.Exists(index)) return new WeightFolder(directory, ReadIndex(index));
        if (File.Exists(System.IO.Path.Combine(directory, SingleFile))) return new WeightFolder(directory, null);
        throw new ModelFormatException($"{directory}: no {SingleFile} or {IndexFile} (is this a Hugging Face model folder?)");
    }

    private static Dictionary<string, string> ReadIndex(string path)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            if (!document.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException($"{path}: no weight_map object");
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                var file = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : "";
                // The index names files beside it; anything that climbs out of the folder is refused.
                if (file.Length == 0 || file != System.IO.Path.GetFileName(file) || file is "." or "..")
                    throw new ModelFormatException($"{path}: tensor '{entry.Name}' maps to an invalid file name '{file}'");
                result[entry.Name] = file;
            }

            return result;
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{path}: not valid JSON ({e.Message})", e);
        }
    }

    public bool Contains(string name) =>
        _weightMap?.ContainsKey(name) ?? FileFor(SingleFile).Contains(name);

    public Tensor Get(string name)
    {
        if (_weightMap is null) return FileFor(SingleFile).Get(name);
        if (!_weightMap.TryGetValue(name, out var file))
            throw new ModelFormatException($"{_directory}: tensor '{name}' is missing from {IndexFile}");
        return FileFor(file).Get(name);
    }

    /// <summary>The files this folder has mapped so far (a stage should map only those holding its tensors).</summary>
    public IReadOnlyCollection<string> OpenedFiles => _open.Keys;

    /// <summary>Every tensor lies in a read-only file mapping, whose pages can be dropped and read back.</summary>
    public unsafe void Release(in Tensor tensor) => PageRelease.Release(tensor.Pointer, tensor.ByteLength);

    private SafetensorsFile FileFor(string file)
    {
        if (_open.TryGetValue(file, out var opened)) return opened;
        var path = System.IO.Path.Combine(_directory, file);
        if (!File.Exists(path)) throw new ModelFormatException($"{path}: weight file is missing");
        opened = SafetensorsFile.Open(path);
        _open.Add(file, opened);
        return opened;
    }

    public void Dispose()
    {
        foreach (var file in _open.Values) file.Dispose();
        _open.Clear();
    }
}
