namespace Exo.Api.Completions;

/// <summary>
/// Holds back generated text that could still turn into a stop sequence, and cuts the text where one appears, so a
/// client never sees any part of a stop string even when it spans several tokens.
/// </summary>
internal sealed class StopSequenceBuffer(IReadOnlyList<string> stops)
{
    private readonly System.Text.StringBuilder _pending = new();

    public bool Stopped { get; private set; }

    /// <summary>Adds text and returns what is safe to send now.</summary>
    public string Push(string text)
    {
        if (Stopped) return "";
        _pending.Append(text);
        if (stops.Count == 0) return Take(_pending.Length);

        var pending = _pending.ToString();
        var cut = -1;
        foreach (var stop in stops)
        {
            var at = pending.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }

        if (cut >= 0)
        {
            Stopped = true;
            var sent = pending[..cut];
            _pending.Clear();
            return sent;
        }

        return Take(pending.Length - LongestStopPrefixSuffix(pending));
    }

    /// <summary>Whatever is still held back, when generation ends for another reason.</summary>
    public string Flush() => Stopped ? "" : Take(_pending.Length);

    private string Take(int count)
    {
        var text = _pending.ToString(0, count);
        _pending.Remove(0, count);
        return text;
    }

    /// <summary>The length of the longest suffix of text that begins some stop sequence.</summary>
    private int LongestStopPrefixSuffix(string text)
    {
        var longest = 0;
        foreach (var stop in stops)
        {
            for (var n = Math.Min(stop.Length - 1, text.Length); n > longest; n--)
            {
                if (text.AsSpan(text.Length - n).SequenceEqual(stop.AsSpan(0, n)))
                {
                    longest = n;
                    break;
                }
            }
        }

        return longest;
    }
}
