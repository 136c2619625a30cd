using System.Threading.Channels;
using Exo.Inference.Generation;
using Exo.Inference.Model;
using Exo.Inference.Sampling;
using Exo.Text.Constraints;

namespace Exo.Inference.Pipeline;

/// <summary>
/// What a request asks of every stage it passes through; sent with its prefill. The prompt rides along because the
/// last stage's penalties look at it, and only the first stage sees token ids. The last stage constrains its sampling
/// to <paramref name="Output"/>, whose text so far is the last <paramref name="Generated"/> tokens of the prompt.
/// </summary>
public sealed record RequestOptions(
    int ContextTokens,
    SamplingParameters Sampling,
    int MaxNewTokens,
    IReadOnlySet<int> EndTokens,
    IReadOnlyList<int> Prompt,
    int? TopLogprobs = null,
    OutputConstraint? Output = null,
    int Generated = 0);

/// <summary>Work for one stage: the next positions of one request, as token ids (first stage) or hidden states.</summary>
public sealed record StageWork(string RequestId, int[]? Tokens, float[]? Hidden, int Rows);

/// <summary>What a stage produced for one request: hidden states for the next stage, or (last stage) a sampled token.</summary>
public abstract record StageResult(string RequestId);

public sealed record HiddenResult(string RequestId, float[] Hidden, int Rows) : StageResult(RequestId);

public sealed record TokenResult(string RequestId, int Token, int Index, FinishReason? Finish, TokenLogprobs? Logprobs = null)
    : StageResult(RequestId);

public sealed record FailedResult(string RequestId, string Error) : StageResult(RequestId);

/// <summary>A request could not be admitted: its KV cache would exceed the stage's memory budget.</summary>
public sealed class StageCapacityException(string message) : Exception(message);

/// <summary>
/// Runs one pipeline stage for many requests at once. Each request owns a KV cache sized at admission against a
/// byte budget, so the stage never grows past what it planned for. Work that arrives while a batch runs waits and
/// goes into the next batch together, so concurrent sequences share one pass over the weights; on a ring of several
/// stages a batch takes at most a share of the open requests (<see cref="MicroBatching"/>), so that every stage works
/// on a micro-batch of its own. Only the last stage samples.
/// </summary>
public sealed class StageRuntime : IAsyncDisposable
{
    private readonly IModelStage _stage;
    private readonly long _kvBudgetBytes;
    private readonly OutputGrammars? _grammars;
    private readonly int _maxBatchRows;
    private readonly Channel<StageWork> _queue = Channel.CreateUnbounded<StageWork>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<StageResult> _results = Channel.CreateUnbounded<StageResult>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, RequestState> _requests = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _loop;
    private long _kvBytesInUse;
    private volatile int _ringStages = 1;

    // Batch inputs and outputs, grown to the largest batch and reused: steady decoding allocates only its results.
    private SequenceChunk[] _chunks = [];
    private int[] _tokens = [];      // [rows]
    private float[] _hidden = [];    // [rows, hidden]
    private float[] _output = [];    // [rows or sequences, hidden or vocab]

    private sealed class RequestState(KvCache cache, RequestOptions options, Sampler? sampler, TokenConstraint? constraint)
    {
        public KvCache Cache { get; } = cache;
        public RequestOptions Options { get; } = options;
        public Sampler? Sampler { get; } = sampler;

        /// <summary>The sampler's output constraint, if any: its automaton goes back to the grammar when the request ends.</summary>
        public TokenConstraint? Constraint { get; } = constraint;

        public void Free()
        {
            Cache.Dispose();
            Constraint?.Dispose();
        }
        public int Produced { get; set; }

        // Under _gate: the request is in the step being run, and was closed meanwhile (its cache is freed after the step).
        public bool InStep { get; set; }
        public bool ClosedInStep { get; set; }
    }

    /// <summary>
    /// A runtime for <paramref name="stage"/> with <paramref name="kvBudgetBytes"/> of KV cache; a last stage given the
    /// model's <paramref name="grammars"/> constrains the output of requests that ask for it.
    /// </summary>
    public StageRuntime(IModelStage stage, long kvBudgetBytes, OutputGrammars? grammars = null, int maxBatchRows = 512)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvBudgetBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBatchRows);
        _stage = stage;
        _kvBudgetBytes = kvBudgetBytes;
        _grammars = grammars;
        _maxBatchRows = maxBatchRows;
        _loop = Task.Run(RunAsync);
    }

    public IModelStage Stage => _stage;

    /// <summary>
    /// How many stages the ring this stage runs in has (1, the default, for a model run whole): a step takes at most
    /// <see cref="MicroBatching.SequenceLimit"/> sequences. Set whenever a placement puts the stage in a ring.
    /// </summary>
    public int RingStages
    {
        get => _ringStages;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value);
            _ringStages = value;
        }
    }

    /// <summary>Results in the order batches finish; the transport forwards each to the next stage or the gateway.</summary>
    public ChannelReader<StageResult> Results => _results.Reader;

    public int ActiveRequests
    {
        get { lock (_gate) return _requests.Count; }
    }

    public long KvBytesInUse => Interlocked.Read(ref _kvBytesInUse);

    /// <summary>Positions of context still free in the budget: a request of that many or fewer is admitted.</summary>
    public long FreeTokens => (_kvBudgetBytes - KvBytesInUse) / KvBytesFor(1);

    /// <summary>Positions of context the whole budget holds: a longer request is never admitted.</summary>
    public long CapacityTokens => _kvBudgetBytes / KvBytesFor(1);

    /// <summary>Bytes one request of <paramref name="contextTokens"/> positions holds in this stage's KV cache.</summary>
    public long KvBytesFor(int contextTokens) => 2L * _stage.Layers.Count * _stage.Config.KvDim * sizeof(float) * contextTokens;

    /// <summary>Admits a request: reserves its KV cache. Throws <see cref="StageCapacityException"/> when it does not fit.</summary>
    public void Open(string requestId, RequestOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(requestId);
        options.Sampling.Validate();
        var context = _stage.Config.MaxPositionEmbeddings;
        if (options.ContextTokens <= 0 || options.ContextTokens > context)
            throw new ArgumentOutOfRangeException(nameof(options), $"a request's context of {options.ContextTokens} tokens must be in [1, {context}]");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxNewTokens);
        if (options.TopLogprobs is < 0 or > TokenLogprobs.MaxTop)
            throw new ArgumentOutOfRangeException(nameof(options), $"top logprobs must be in [0, {TokenLogprobs.MaxTop}]");

        // The sampler (and the constraint, whose grammar may take a while to compile) is made outside the lock, which
        // the step loop takes: no other request waits for it.
        TokenConstraint? constraint = null;
        Sampler? sampler = null;
        if (_stage.IsLast)
        {
            constraint = Constraint(options);
            sampler = new Sampler(options.Sampling, _stage.Config.VocabSize, constraint);
            sampler.Observe(options.Prompt.ToArray());
        }

        var bytes = KvBytesFor(options.ContextTokens);
        try
        {
            lock (_gate)
            {
                if (_requests.ContainsKey(requestId)) throw new ArgumentException($"request '{requestId}' is already open", nameof(requestId));
                if (_kvBytesInUse + bytes > _kvBudgetBytes)
                {
                    throw new StageCapacityException(
                        $"stage {_stage.Layers} has {(_kvBudgetBytes - _kvBytesInUse) / 1e6:0.0} MB of KV cache free; a {options.ContextTokens}-token request needs {bytes / 1e6:0.0} MB");
                }

                _requests.Add(requestId, new RequestState(_stage.CreateCache(options.ContextTokens), options, sampler, constraint));
                _kvBytesInUse += bytes;
            }
        }
        catch
        {
            constraint?.Dispose();
            throw;
        }
    }

    /// <summary>The request's output constraint, past the output it already has (a request resumed on a new ring); null when it has none.</summary>
    private TokenConstraint? Constraint(RequestOptions options)
    {
        if (options.Output is not { } output) return null;
        if (_grammars is null) throw new ArgumentException("this stage cannot constrain output: its model folder has no tokenizer", nameof(options));
        try
        {
            var constraint = _grammars.Start(output, options.EndTokens, options.MaxNewTokens + options.Generated);
            for (var i = options.Prompt.Count - options.Generated; i < options.Prompt.Count; i++) constraint.Accept(options.Prompt[i]);
            return constraint;
        }
        catch (Exception e) when (e is GrammarException or InvalidOperationException)
        {
            throw new ArgumentException($"the output constraint: {e.Message}", nameof(options), e);
        }
    }

    /// <summary>Queues the next positions of an open request.</summary>
    public void Submit(StageWork work)
    {
        if (_stage.IsFirst != work.Tokens is not null || work.Tokens is null == work.Hidden is null)
            throw new ArgumentException(_stage.IsFirst ? "the first stage takes token ids" : "this stage takes hidden states", nameof(work));
        var rows = work.Tokens?.Length ?? (work.Hidden!.Length / _stage.Config.HiddenSize);
        if (rows <= 0 || rows != work.Rows || (work.Hidden is not null && work.Hidden.Length != rows * _stage.Config.HiddenSize))
            throw new ArgumentException($"work for '{work.RequestId}' declares {work.Rows} rows but carries {rows}", nameof(work));
        if (!_queue.Writer.TryWrite(work)) throw new ObjectDisposedException(nameof(StageRuntime));
    }

    /// <summary>Frees a request's KV cache; work still queued for it is dropped. Unknown ids are ignored (already freed).</summary>
    public bool Close(string requestId)
    {
        lock (_gate)
        {
            if (!_requests.Remove(requestId, out var state)) return false;
            _kvBytesInUse -= KvBytesFor(state.Cache.Capacity);
            // A step may be reading the cache right now (a GPU's memory cannot be freed under it): it goes after the step.
            if (state.InStep) state.ClosedInStep = true;
            else state.Free();
            return true;
        }
    }

    private async Task RunAsync()
    {
        var token = _stopping.Token;
        var batch = new List<(StageWork Work, RequestState State)>();
        var deferred = new Queue<StageWork>();
        try
        {
            while (true)
            {
                if (deferred.Count == 0 && !await _queue.Reader.WaitToReadAsync(token)) return;
                Collect(batch, deferred);
                try
                {
                    if (batch.Count > 0) ExecuteHoldingCaches(batch);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A failed batch fails its requests, never the stage: the loop must outlive any one batch.
                    foreach (var (work, _) in batch)
                    {
                        Close(work.RequestId);
                        _results.Writer.TryWrite(new FailedResult(work.RequestId, e.Message));
                    }
                }

                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        finally
        {
            _results.Writer.TryComplete();
        }
    }

    /// <summary>
    /// Takes waiting work into one batch, oldest first: at most one item per request (a second waits for the next
    /// batch, keeping each request's order), at most the row limit, and at most the ring's share of the open requests.
    /// </summary>
    private void Collect(List<(StageWork Work, RequestState State)> batch, Queue<StageWork> deferred)
    {
        int sequences;
        lock (_gate) sequences = MicroBatching.SequenceLimit(_requests.Count, _ringStages);
        var rows = 0;
        var waiting = deferred.Count;
        for (var read = 0; ; read++)
        {
            StageWork? work;
            if (read < waiting) work = deferred.Dequeue();
            else if (!_queue.Reader.TryRead(out work)) break;

            RequestState? state;
            lock (_gate) _requests.TryGetValue(work.RequestId, out state);
            if (state is null)
            {
                _results.Writer.TryWrite(new FailedResult(work.RequestId, $"request '{work.RequestId}' is not open on stage {_stage.Layers}"));
                continue;
            }

            if (batch.Count == sequences || (rows > 0 && rows + work.Rows > _maxBatchRows))
            {
                // Full: this item and every older one not yet taken keep their places.
                deferred.Enqueue(work);
                for (read++; read < waiting; read++) deferred.Enqueue(deferred.Dequeue());
                return;
            }

            if (Contains(batch, state))
            {
                deferred.Enqueue(work);
                continue;
            }

            batch.Add((work, state));
            rows += work.Rows;
        }
    }

    /// <summary>Runs a batch with its requests' caches held: one closed meanwhile is freed once the step is done.</summary>
    private void ExecuteHoldingCaches(List<(StageWork Work, RequestState State)> batch)
    {
        lock (_gate)
        {
            foreach (var (_, state) in batch) state.InStep = true;
        }

        try
        {
            Execute(batch);
        }
        finally
        {
            lock (_gate)
            {
                foreach (var (_, state) in batch)
                {
                    state.InStep = false;
                    if (state.ClosedInStep) state.Free();
                }
            }
        }
    }

    private void Execute(List<(StageWork Work, RequestState State)> batch)
    {
        // Sequences whose context cannot take the new rows fail alone, not the batch.
        for (var i = batch.Count - 1; i >= 0; i--)
        {
            var (work, state) = batch[i];
            if (state.Cache.Length + work.Rows <= state.Cache.Capacity) continue;
            _results.Writer.TryWrite(new FailedResult(work.RequestId, $"request '{work.RequestId}' exceeds its context of {state.Cache.Capacity} tokens"));
            batch.RemoveAt(i);
        }

        if (batch.Count == 0) return;

        var rows = 0;
        foreach (var (work, _) in batch) rows += work.Rows;
        var width = _stage.Config.HiddenSize;
        Grow(ref _chunks, batch.Count);
        var chunks = _chunks.AsSpan(0, batch.Count);
        for (var i = 0; i < batch.Count; i++) chunks[i] = new SequenceChunk(batch[i].State.Cache, batch[i].Work.Rows);

        Grow(ref _output, _stage.OutputRows(chunks, LogitRows.LastOfEachSequence) * _stage.OutputWidth);
        var at = 0;
        if (_stage.IsFirst)
        {
            Grow(ref _tokens, rows);
            foreach (var (work, _) in batch)
            {
                work.Tokens!.CopyTo(_tokens, at);
                at += work.Rows;
            }

            _stage.ForwardTokens(chunks, _tokens.AsSpan(0, rows), _output);
        }
        else
        {
            Grow(ref _hidden, rows * width);
            foreach (var (work, _) in batch)
            {
                work.Hidden!.CopyTo(_hidden, at);
                at += work.Hidden.Length;
            }

            _stage.ForwardHidden(chunks, _hidden.AsSpan(0, rows * width), _output);
        }

        var output = _output;
        if (_stage.IsLast) EmitTokens(batch, output);
        else EmitHidden(batch, output);
    }

    private static void Grow<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length) buffer = new T[length];
    }

    private static bool Contains(List<(StageWork Work, RequestState State)> batch, RequestState state)
    {
        foreach (var (_, s) in batch)
        {
            if (s == state) return true;
        }

        return false;
    }

    private void EmitHidden(List<(StageWork Work, RequestState State)> batch, float[] output)
    {
        var width = _stage.Config.HiddenSize;
        var at = 0;
        foreach (var (work, _) in batch)
        {
            _results.Writer.TryWrite(new HiddenResult(work.RequestId, output.AsSpan(at, work.Rows * width).ToArray(), work.Rows));
            at += work.Rows * width;
        }
    }

    private void EmitTokens(List<(StageWork Work, RequestState State)> batch, float[] output)
    {
        var vocab = _stage.Config.VocabSize;
        for (var i = 0; i < batch.Count; i++)
        {
            var (work, state) = batch[i];
            var logits = output.AsSpan(i * vocab, vocab);
            // Logprobs come from the sampler: under an output constraint they are those of the masked distribution.
            var token = state.Sampler!.Sample(logits, state.Options.TopLogprobs, out var logprobs);
            var index = state.Produced++;
            // A constrained text that is whole, with nothing allowed after it and no end token to write, is done.
            FinishReason? finish = state.Options.EndTokens.Contains(token) ? FinishReason.Stop
                : state.Produced >= state.Options.MaxNewTokens || state.Cache.Length >= state.Cache.Capacity ? FinishReason.Length
                : state.Constraint is { IsComplete: true } && state.Options.EndTokens.Count == 0 ? FinishReason.Length
                : null;
            // A finished request is freed before its last token is published: whoever reads it may reopen the id or
            // count on the KV budget at once.
            if (finish is not null) Close(work.RequestId);
            _results.Writer.TryWrite(new TokenResult(work.RequestId, token, index, finish, logprobs));
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stopping.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
        }

        // The loop has stopped, so no step can read them: requests still open give their KV caches back (GPU memory
        // otherwise outlives the stage).
        lock (_gate)
        {
            foreach (var state in _requests.Values) state.Free();
            _requests.Clear();
            _kvBytesInUse = 0;
        }

        _stopping.Dispose();
    }
}
