namespace Exo.Api.Completions;

/// <summary>
/// Lets one large request at a time parse, render and tokenize its body. Each makes several copies of its text while it
/// does (the request's strings, the rendered prompt, the tokenizer's pieces), so eight 7 MB bodies at once would take
/// the API from tens of megabytes to gigabytes; one after another they cost one body's worth. Small requests pass straight through.
/// </summary>
public sealed class PromptGate
{
    /// <summary>A body this long or longer (or of unknown length) waits its turn; a chat of this size is a long book.</summary>
    public const long LargeBytes = 256 * 1024;

    private readonly SemaphoreSlim _large = new(1, 1);

    /// <summary>Null for a small request; otherwise the turn, to be disposed once the prompt is tokenized.</summary>
    public async Task<IDisposable?> EnterAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.ContentLength < LargeBytes) return null;
        await _large.WaitAsync(cancellationToken);
        return new Turn(_large);
    }

    private sealed class Turn(SemaphoreSlim gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) gate.Release();
        }
    }
}
