namespace Exo.Text.Tokenization;

/// <summary>A tokenizer or model-configuration file that is missing, malformed or uses an unsupported feature.</summary>
public sealed class TokenizerFormatException(string message, Exception? inner = null) : Exception(message, inner);
