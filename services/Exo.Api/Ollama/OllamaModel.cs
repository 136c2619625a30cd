using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Exo.Api.Models;
using Exo.Api.OpenAi;
using Exo.Inference.Weights;

namespace Exo.Api.Ollama;

/// <summary>
/// A served model as Ollama's model lists describe it: its name (the folder's name with Ollama's default tag,
/// <c>exo-tiny:latest</c>), the size of its weight files, a digest, when its folder last changed, and its details, read
/// once from the weights' headers: parameters counted, and the element type that holds most of them.
/// </summary>
internal sealed record OllamaModel(string Name, ServedModel Served, long Size, string Digest, long ParameterCount, string QuantizationLevel)
{
    public const string DefaultTag = ":latest";
    public const string Format = "safetensors";

    private static readonly ConditionalWeakTable<ServedModel, OllamaModel> Described = new();

    public string Family => Served.Config.ModelType;

    /// <summary>The parameter count as Ollama prints it: 22.6M, 8.0B.</summary>
    public string ParameterSize => ParameterCount switch
    {
        >= 1_000_000_000 => string.Create(CultureInfo.InvariantCulture, $"{ParameterCount / 1e9:0.0}B"),
        >= 1_000_000 => string.Create(CultureInfo.InvariantCulture, $"{ParameterCount / 1e6:0.0}M"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{ParameterCount / 1e3:0.0}K"),
    };

    /// <summary>A model by the name a client gives: its id, or its id with the default tag; 404 otherwise.</summary>
    public static ServedModel Find(ModelCatalog catalog, string name) =>
        catalog.Find(name)
        ?? (name.EndsWith(DefaultTag, StringComparison.Ordinal) ? catalog.Find(name[..^DefaultTag.Length]) : null)
        ?? throw new OpenAiException(404, $"model '{name}' not found", "model", "model_not_found");

    public static OllamaModel Of(ServedModel model) => Described.GetValue(model, Describe);

    /// <summary>
    /// Reads the weight files' headers (the data stays on disk). The digest is a SHA-256 of the files' names, sizes and
    /// modification times: it changes when the weights do, without reading gigabytes to hash them.
    /// </summary>
    private static OllamaModel Describe(ServedModel model)
    {
        var files = new DirectoryInfo(model.Directory).GetFiles("*.safetensors").OrderBy(f => f.Name, StringComparer.Ordinal).ToList();
        var elements = new Dictionary<DType, long>();
        var stamp = new StringBuilder();
        foreach (var file in files)
        {
            stamp.Append(CultureInfo.InvariantCulture, $"{file.Name}\n{file.Length}\n{file.LastWriteTimeUtc.Ticks}\n");
            using var weights = SafetensorsFile.Open(file.FullName);
            foreach (var name in weights.Names)
            {
                var tensor = weights.Get(name);
                elements[tensor.Type] = elements.GetValueOrDefault(tensor.Type) + tensor.ElementCount;
            }
        }

        var digest = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(stamp.ToString())));
        var quantization = elements.Count == 0 ? "unknown" : elements.MaxBy(e => e.Value).Key.ToString();
        return new OllamaModel(model.Id + DefaultTag, model, files.Sum(f => f.Length), digest, elements.Values.Sum(), quantization);
    }
}
