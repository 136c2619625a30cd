namespace Exo.Inference.Weights;

/// <summary>Named tensors of one model, from a Hugging Face folder or a GGUF file; disposing unmaps them.</summary>
public interface IWeightSource : IDisposable
{
    bool Contains(string name);

    Tensor Get(string name);

    /// <summary>
    /// Hands back the memory of a tensor from <see cref="Get"/> whose bytes the caller has copied elsewhere, so that
    /// they are not resident twice. The tensor stays readable: a file mapping brings its pages back when touched.
    /// </summary>
    void Release(in Tensor tensor);

    /// <summary>The files mapped so far.</summary>
    IReadOnlyCollection<string> OpenedFiles { get; }
}

/// <summary>What a model path names: a GGUF file, or a Hugging Face model folder.</summary>
public static class ModelPath
{
    /// <summary>A path to a file (not a folder) is taken as GGUF; its magic is checked when it is opened.</summary>
    public static bool IsGguf(string path) => File.Exists(path);
}
