namespace Exo.Text.Templates;

/// <summary>What went wrong in a template, named after the Python exception Jinja/transformers would raise.</summary>
public enum TemplateErrorKind
{
    /// <summary>The template text does not parse (jinja2 TemplateSyntaxError).</summary>
    Syntax,

    /// <summary>The template called <c>raise_exception</c> (transformers' TemplateError).</summary>
    Raised,

    /// <summary>An operation on values of the wrong type (Python TypeError).</summary>
    Type,

    /// <summary>A bad value (Python ValueError), also for invalid chat-template arguments.</summary>
    Value,

    /// <summary>An undefined value used where a real one is needed (jinja2 UndefinedError).</summary>
    Undefined,

    /// <summary>An operation the sandbox forbids, such as mutating a list (jinja2 SecurityError).</summary>
    Security,
}

/// <summary>A template that failed to parse or render. <see cref="Line"/> is 1-based, 0 when no line applies.</summary>
public sealed class TemplateException(TemplateErrorKind kind, string detail, int line, Exception? inner = null)
    : Exception(line > 0 ? $"{detail} (template line {line})" : detail, inner)
{
    public TemplateErrorKind Kind { get; } = kind;

    public int Line { get; } = line;

    /// <summary>The message without the line suffix, as Python would print it.</summary>
    public string Detail { get; } = detail;
}

/// <summary>Thrown below the interpreter where the line is not known; the interpreter adds the line.</summary>
internal sealed class TemplateRuntimeException(TemplateErrorKind kind, string message) : Exception(message)
{
    public TemplateErrorKind Kind { get; } = kind;
}
