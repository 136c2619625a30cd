namespace Exo.Inference;

/// <summary>A model folder, weight file or reference file is missing, malformed or unsupported.</summary>
public sealed class ModelFormatException(string message, Exception? inner = null) : Exception(message, inner);
