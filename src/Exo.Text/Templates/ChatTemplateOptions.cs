using System.Text.Json;

namespace Exo.Text.Templates;

/// <summary>The rendering arguments of transformers' <c>apply_chat_template</c>.</summary>
public sealed record ChatTemplateOptions
{
    /// <summary>Tool definitions (a JSON array of JSON-schema objects); given, they also select a "tool_use" template.</summary>
    public JsonElement? Tools { get; init; }

    /// <summary>Documents for retrieval-augmented generation, passed to the template as <c>documents</c>.</summary>
    public JsonElement? Documents { get; init; }

    /// <summary>transformers' <c>chat_template</c> argument: the name of one of the model's templates, or template text.</summary>
    public string? Template { get; init; }

    public bool AddGenerationPrompt { get; init; }

    /// <summary>End the text right after the last message's content, for the model to continue it.</summary>
    public bool ContinueFinalMessage { get; init; }

    /// <summary>Further template variables (transformers' **kwargs); they override the special-token variables.</summary>
    public IReadOnlyDictionary<string, object?>? Variables { get; init; }
}

/// <summary>
/// A rendered conversation, with where the output of each <c>{% generation %}</c> block lies (what transformers'
/// <c>return_assistant_tokens_mask</c> is built from), and the source of the template that rendered it.
/// </summary>
public sealed record ChatRendering(string Text, IReadOnlyList<CharSpan> Generation, string TemplateSource)
{
    /// <summary>transformers' test for generation blocks (it warns when a mask is asked of a template without one).</summary>
    public bool TemplateHasGenerationBlocks => System.Text.RegularExpressions.Regex.IsMatch(TemplateSource, @"\{\%-?\s*generation\s*-?\%\}");
}
