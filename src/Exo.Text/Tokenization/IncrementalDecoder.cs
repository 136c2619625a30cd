namespace Exo.Text.Tokenization;

/// <summary>
/// Detokenizes a stream of ids. Each new id is decoded together with a few previous ones (so decoders that look at
/// neighbours, such as SentencePiece's leading-space strip, see the same context as a full decode) and text is only
/// released once it does not end in an incomplete UTF-8 sequence (U+FFFD).
/// </summary>
public sealed class IncrementalDecoder
{
    private readonly Tokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly List<int> _ids = [];
    private int _prefixOffset;
    private int _readOffset;

    internal IncrementalDecoder(Tokenizer tokenizer, bool skipSpecialTokens)
    {
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Adds one id and returns the text it completes (possibly empty).</summary>
    public string Add(int id)
    {
        _ids.Add(id);
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids);
        var prefixText = _tokenizer.Decode(span[_prefixOffset.._readOffset], _skipSpecialTokens);
        var fullText = _tokenizer.Decode(span[_prefixOffset..], _skipSpecialTokens);
        if (fullText.Length <= prefixText.Length || fullText.EndsWith('\uFFFD') || !fullText.StartsWith(prefixText, StringComparison.Ordinal))
        {
            return "";
        }
        _prefixOffset = _readOffset;
        _readOffset = _ids.Count;
        return fullText[prefixText.Length..];
    }

    /// <summary>Returns whatever is still held back (an incomplete character comes out as U+FFFD) and resets nothing.</summary>
    public string Flush()
    {
        var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids);
        var prefixText = _tokenizer.Decode(span[_prefixOffset.._readOffset], _skipSpecialTokens);
        var fullText = _tokenizer.Decode(span[_prefixOffset..], _skipSpecialTokens);
        _prefixOffset = _readOffset = _ids.Count;
        return fullText.Length > prefixText.Length && fullText.StartsWith(prefixText, StringComparison.Ordinal) ? fullText[prefixText.Length..] : "";
    }
}
