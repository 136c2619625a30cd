namespace Exo.Inference.Weights;

/// <summary>How a backend wants weight matrices stored: what a loader converts them to before the backend reads them.</summary>
public interface IWeightPreferences
{
    /// <summary>
    /// The type a matrix stored as <paramref name="type"/> should be held in: the type itself, or one the backend has
    /// kernels for when <paramref name="type"/> has none (loaders re-quantize such matrices).
    /// </summary>
    DType PreferredType(DType type);

    /// <summary>The layout the backend reads matrices of this type fastest in; loaders copy matrices into it.</summary>
    TensorLayout PreferredLayout(DType type);
}
