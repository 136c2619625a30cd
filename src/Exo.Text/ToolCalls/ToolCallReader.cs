using System.Text;

namespace Exo.Text.ToolCalls;

/// <summary>
/// Splits a model's streamed output into content and tool calls as it arrives: text that may still turn out to be part
/// of a call is held back, everything else is given back at once. Whitespace between calls is not content.
/// </summary>
public abstract class ToolCallReader
{
    private readonly StringBuilder _space = new();
    private bool _called;

    /// <summary>Feeds the next text; gives back what is known now.</summary>
    public abstract IReadOnlyList<ToolCallPiece> Push(string text);

    /// <summary>The output has ended: gives back what was held.</summary>
    public abstract IReadOnlyList<ToolCallPiece> Finish();

    /// <summary>Whether any call was read.</summary>
    public bool Called => _called;

    protected void Content(List<ToolCallPiece> pieces, string text)
    {
        // Trailing whitespace waits: before a call, or at the end after one, it is layout, not content.
        var shown = text.TrimEnd();
        if (shown.Length > 0)
        {
            _space.Append(shown);
            pieces.Add(new ToolCallPiece(_space.ToString(), null));
            _space.Clear();
        }

        _space.Append(text, shown.Length, text.Length - shown.Length);
    }

    protected void Call(List<ToolCallPiece> pieces, ToolCall call)
    {
        _space.Clear();
        _called = true;
        pieces.Add(new ToolCallPiece(null, call));
    }

    /// <summary>At the end, whitespace still waiting is content only when no call was read.</summary>
    protected void FlushSpace(List<ToolCallPiece> pieces)
    {
        if (_space.Length > 0 && !_called) pieces.Add(new ToolCallPiece(_space.ToString(), null));
        _space.Clear();
    }
}

/// <summary>Calls inside tags anywhere in the output (Hermes, Qwen: &lt;tool_call&gt;{"name": ..., "arguments": ...}&lt;/tool_call&gt;).</summary>
internal sealed class TaggedToolCallReader(string open, string close) : ToolCallReader
{
    private readonly StringBuilder _held = new();
    private bool _inside;

    public override IReadOnlyList<ToolCallPiece> Push(string text)
    {
        var pieces = new List<ToolCallPiece>();
        _held.Append(text);
        while (true)
        {
            var held = _held.ToString();
            if (!_inside)
            {
                var start = held.IndexOf(open, StringComparison.Ordinal);
                if (start < 0)
                {
                    var keep = PartialSuffix(held, open);
                    Content(pieces, held[..^keep]);
                    _held.Remove(0, held.Length - keep);
                    return pieces;
                }

                Content(pieces, held[..start]);
                _held.Remove(0, start + open.Length);
                _inside = true;
                continue;
            }

            var end = held.IndexOf(close, StringComparison.Ordinal);
            if (end < 0) return pieces;
            Body(pieces, held[..end], closed: true);
            _held.Remove(0, end + close.Length);
            _inside = false;
        }
    }

    public override IReadOnlyList<ToolCallPiece> Finish()
    {
        var pieces = new List<ToolCallPiece>();
        if (_inside) Body(pieces, _held.ToString(), closed: false);
        else Content(pieces, _held.ToString());
        _held.Clear();
        _inside = false;
        FlushSpace(pieces);
        return pieces;
    }

    /// <summary>A call's body; one that is not a call's JSON is given back as the text it was.</summary>
    private void Body(List<ToolCallPiece> pieces, string body, bool closed)
    {
        if (ToolCallJson.TryRead(body.Trim(), allowArray: false) is [var call]) Call(pieces, call);
        else Content(pieces, open + body + (closed ? close : ""));
    }

    /// <summary>The length of the longest end of <paramref name="text"/> that begins <paramref name="tag"/>.</summary>
    private static int PartialSuffix(string text, string tag)
    {
        for (var n = Math.Min(tag.Length - 1, text.Length); n > 0; n--)
        {
            if (string.CompareOrdinal(text, text.Length - n, tag, 0, n) == 0) return n;
        }

        return 0;
    }
}

/// <summary>
/// Calls that are the whole output, as JSON (Llama 3: {"name": ..., "parameters": ...}; Mistral: [{"name": ..., "arguments": ...}]
/// after [TOOL_CALLS]). Output that begins otherwise streams as content; output that begins like a call is held to the
/// end, and given back as content when it is not one.
/// </summary>
internal sealed class LeadingToolCallReader(string marker, string openers, Func<string, List<ToolCall>?> parse) : ToolCallReader
{
    private readonly StringBuilder _held = new();
    private bool? _json;

    public override IReadOnlyList<ToolCallPiece> Push(string text)
    {
        var pieces = new List<ToolCallPiece>();
        if (_json == false)
        {
            Content(pieces, text);
            return pieces;
        }

        _held.Append(text);
        if (_json == true) return pieces;
        var start = _held.ToString().TrimStart();
        if (start.Length == 0 || (start.Length < marker.Length && marker.StartsWith(start, StringComparison.Ordinal))) return pieces;
        _json = start.StartsWith(marker, StringComparison.Ordinal) && marker.Length > 0 || openers.Contains(start[0]);
        if (_json == false)
        {
            Content(pieces, _held.ToString());
            _held.Clear();
        }

        return pieces;
    }

    public override IReadOnlyList<ToolCallPiece> Finish()
    {
        var pieces = new List<ToolCallPiece>();
        var held = _held.ToString();
        _held.Clear();
        var body = held.TrimStart();
        if (marker.Length > 0 && body.StartsWith(marker, StringComparison.Ordinal)) body = body[marker.Length..];
        if (_json == true && parse(body.Trim()) is { Count: > 0 } calls)
        {
            foreach (var call in calls) Call(pieces, call);
        }
        else
        {
            Content(pieces, held);
        }

        FlushSpace(pieces);
        return pieces;
    }
}
