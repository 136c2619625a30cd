using Exo.Text.Constraints;

namespace Exo.Inference.Generation;

/// <summary>What a generation's output must be (a grammar, shared) and the model's token bytes it is checked against.</summary>
public sealed record StructuredOutput(OutputGrammar Grammar, TokenVocabulary Vocabulary);
