using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Exo.Api.OpenAi;
using Exo.Text.ToolCalls;

namespace Exo.Api.Completions;

/// <summary>
/// One choice of a completion (a request asks for n of them) as the client hears it: its text deltas with their logprobs,
/// the tool calls read out of the text (when the request offers tools), and its finish. Started up to its first token
/// before any response is sent, so a cluster that cannot serve answers with a status rather than inside a stream.
/// </summary>
internal sealed class ChoiceRun(int index, CompletionRunner runner, CompletionTrace trace, IAsyncEnumerator<CompletionDelta> deltas, ToolCallReader? tools)
    : IAsyncDisposable
{
    private readonly IAsyncEnumerator<CompletionDelta> _deltas = deltas;
    private readonly ToolCallReader? _tools = tools;
    private bool _more;
    private int _calls;

    public int Index { get; } = index;
    public CompletionRunner Runner { get; } = runner;
    public CompletionTrace Trace { get; } = trace;

    /// <summary>"tool_calls" when the answer called a function and ended by itself; else the runner's reason.</summary>
    public string FinishReason => _calls > 0 && Runner.FinishReason == "stop" ? "tool_calls" : Runner.FinishReason;

    public static async Task<ChoiceRun> StartAsync(int index, CompletionRunner runner, CompletionTrace trace, ToolCallReader? tools, CancellationToken cancellationToken)
    {
        var deltas = runner.RunAsync(trace, cancellationToken).GetAsyncEnumerator(cancellationToken);
        var run = new ChoiceRun(index, runner, trace, deltas, tools);
        try
        {
            run._more = await deltas.MoveNextAsync();
            return run;
        }
        catch (Exception e)
        {
            if (e is not OperationCanceledException) trace.Failed(e);
            await run.DisposeAsync();
            throw;
        }
    }

    /// <summary>The choice's chunks, each with its index: text and logprobs as they come, calls as each is read, then the finish.</summary>
    public async IAsyncEnumerable<CompletionChunk> ChunksAsync(bool withLogprobs, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        for (; _more; _more = await _deltas.MoveNextAsync())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var delta = _deltas.Current;
            var logprobs = withLogprobs && delta.Logprobs.Count > 0 ? delta.Logprobs : null;
            if (_tools is null)
            {
                yield return new CompletionChunk(Index: Index, Text: delta.Text, Logprobs: withLogprobs ? delta.Logprobs : null);
                continue;
            }

            foreach (var chunk in Read(_tools.Push(delta.Text), logprobs)) yield return chunk;
        }

        if (_tools is not null)
        {
            foreach (var chunk in Read(_tools.Finish(), null)) yield return chunk;
        }

        Trace.Completed();
        yield return new CompletionChunk(Index: Index, FinishReason: FinishReason);
    }

    /// <summary>The reader's pieces as chunks; logprobs of tokens whose text is held back ride with the next chunk, or alone.</summary>
    private IEnumerable<CompletionChunk> Read(IReadOnlyList<ToolCallPiece> pieces, IReadOnlyList<LogprobEntry>? logprobs)
    {
        foreach (var piece in pieces)
        {
            if (piece.Call is { } call) yield return new CompletionChunk(Index: Index, ToolCalls: [new IndexedToolCall(_calls++, call)], Logprobs: logprobs);
            else yield return new CompletionChunk(Index: Index, Text: piece.Content, Logprobs: logprobs);
            logprobs = null;
        }

        if (logprobs is not null) yield return new CompletionChunk(Index: Index, Logprobs: logprobs);
    }

    /// <summary>
    /// The chunks of all <paramref name="choices"/> as each comes. A choice that fails ends the whole at once (the others
    /// stop at their next token); leaving early stops every choice's reading before the choices are disposed.
    /// </summary>
    public static async IAsyncEnumerable<CompletionChunk> MergeAsync(IReadOnlyList<ChoiceRun> choices, bool withLogprobs,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (choices.Count == 1)
        {
            await foreach (var chunk in choices[0].ChunksAsync(withLogprobs, cancellationToken)) yield return chunk;
            yield break;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var merged = Channel.CreateBounded<CompletionChunk>(new BoundedChannelOptions(64) { SingleReader = true });
        Exception? failure = null;
        var readers = choices.Select(choice => Task.Run(async () =>
        {
            try
            {
                await foreach (var chunk in choice.ChunksAsync(withLogprobs, stop.Token)) await merged.Writer.WriteAsync(chunk, stop.Token);
            }
            catch (Exception e) when (!stop.IsCancellationRequested)
            {
                Interlocked.CompareExchange(ref failure, e, null);
                merged.Writer.TryComplete();
                await stop.CancelAsync();
            }
        }, stop.Token)).ToArray();
        _ = Task.WhenAll(readers).ContinueWith(_ => merged.Writer.TryComplete(), TaskScheduler.Default);
        try
        {
            await foreach (var chunk in merged.Reader.ReadAllAsync(cancellationToken)) yield return chunk;
            if (failure is not null) ExceptionDispatchInfo.Throw(failure);
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(readers).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _deltas.DisposeAsync();
        Trace.Dispose();
    }
}
