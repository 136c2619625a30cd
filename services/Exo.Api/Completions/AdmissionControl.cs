using Exo.Api.Backends;
using Exo.Api.OpenAi;

namespace Exo.Api.Completions;

/// <summary>The API's queue is full: the client should retry later (429).</summary>
public sealed class AdmissionRejectedException(string message) : Exception(message);

/// <summary>
/// Admits generations by the KV cache their model's ring has left, not by a count: a request reserves prompt + max tokens
/// positions on every stage, and runs once the stage with the least room can take them. The stages report their room
/// every couple of seconds; in between, what this API admitted since a report is taken off it and what it finished is
/// given back, so a burst is not admitted twice on one report and a finished request makes room at once. Requests that
/// do not fit wait in arrival order, in a queue bounded over all models; beyond it they are refused with 429.
/// </summary>
public sealed partial class AdmissionControl(IGenerationBackend backend, int maxWaiting, TimeProvider time, ILogger<AdmissionControl> logger)
{
    // Waiting requests look again this often without being woken: reports and other API replicas' releases wake nobody.
    private static readonly TimeSpan Recheck = TimeSpan.FromMilliseconds(100);

    // After a stage turned a request away, nothing more is admitted on its model until a newer report, or this long (the
    // stages are polled every 2 s), so a stale report does not send the same requests round again and again.
    private static readonly TimeSpan RefusalPause = TimeSpan.FromSeconds(2);

    private readonly Lock _gate = new();
    private readonly Dictionary<string, ModelQueue> _models = new(StringComparer.Ordinal);
    private int _running;
    private int _waiting;

    /// <summary>One model's admitted and waiting requests, and the report they are measured against; used under the gate.</summary>
    private sealed class ModelQueue
    {
        public LinkedList<int> Waiting { get; } = new();
        public HashSet<AdmissionLease> Running { get; } = [];
        public long Reserved { get; set; }
        public long ReportSampledAt { get; set; } = long.MinValue;

        /// <summary>
        /// Positions of the requests admitted before the report was sampled and running when it was first seen: its free
        /// room lacks them already, and gains them back as they finish (<see cref="Reserved"/> falls, this does not).
        /// </summary>
        public long CountedInReport { get; set; }

        public long RefusedAt { get; set; } = long.MinValue;

        /// <summary>Completed (and replaced) whenever room may have been made, to wake the waiting.</summary>
        public TaskCompletionSource Changed { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public int InFlight => Volatile.Read(ref _running);

    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>
    /// Waits until the model's ring has room for <paramref name="contextTokens"/> positions and reserves them; dispose the
    /// lease when the generation ends. Throws <see cref="AdmissionRejectedException"/> when the queue is full, and a 400
    /// for a request larger than a stage's whole KV cache, which no wait would help.
    /// </summary>
    public async Task<AdmissionLease> EnterAsync(string model, int contextTokens, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(contextTokens);
        ModelQueue queue;
        LinkedListNode<int> place;
        lock (_gate)
        {
            queue = Queue(model);
            if (queue.Waiting.Count == 0 && TryAdmit(model, queue, contextTokens) is { } lease) return lease;
            if (_waiting >= maxWaiting)
            {
                throw new AdmissionRejectedException(
                    $"'{model}' has no KV cache free for this request's {contextTokens} positions and {maxWaiting} requests are waiting; retry shortly");
            }

            _waiting++;
            place = queue.Waiting.AddLast(contextTokens);
        }

        try
        {
            while (true)
            {
                Task changed;
                lock (_gate)
                {
                    if (queue.Waiting.First == place && TryAdmit(model, queue, contextTokens) is { } lease)
                    {
                        Leave(queue, place);
                        return lease;
                    }

                    changed = queue.Changed.Task;
                }

                await Task.WhenAny(changed, Task.Delay(Recheck, time, cancellationToken));
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
        finally
        {
            lock (_gate)
            {
                if (place.List is not null) Leave(queue, place);
            }
        }
    }

    private ModelQueue Queue(string model)
    {
        if (!_models.TryGetValue(model, out var queue)) _models[model] = queue = new ModelQueue();
        return queue;
    }

    /// <summary>Takes a request out of the queue; the one behind it may fit where it did not.</summary>
    private void Leave(ModelQueue queue, LinkedListNode<int> place)
    {
        queue.Waiting.Remove(place);
        _waiting--;
        Wake(queue);
    }

    private static void Wake(ModelQueue queue)
    {
        queue.Changed.TrySetResult();
        queue.Changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Reserves the positions if the ring has room for them; under the gate.</summary>
    private AdmissionLease? TryAdmit(string model, ModelQueue queue, int contextTokens)
    {
        // No ready ring: the backend gives the request its own answer (503 with the reason) without waiting here.
        // A capacity of 0 is a worker too old to report its KV cache: unknown, not full.
        if (backend.Room(model) is { CapacityTokens: > 0 } room)
        {
            if (contextTokens > room.CapacityTokens)
            {
                throw OpenAiException.BadRequest(
                    $"this request needs {contextTokens} positions of KV cache (its prompt and max_tokens), but a stage serving '{model}' holds {room.CapacityTokens} in all; lower max_tokens",
                    "max_tokens", "context_length_exceeded");
            }

            if (room.SampledAt != queue.ReportSampledAt)
            {
                queue.ReportSampledAt = room.SampledAt;
                queue.CountedInReport = queue.Running.Where(l => l.AdmittedAt < room.SampledAt).Sum(l => (long)l.Tokens);
            }

            if (room.SampledAt <= queue.RefusedAt && time.GetElapsedTime(queue.RefusedAt) < RefusalPause) return null;
            if (contextTokens > room.FreeTokens - (queue.Reserved - queue.CountedInReport)) return null;
        }

        var lease = new AdmissionLease(this, model, contextTokens, time.GetTimestamp());
        queue.Running.Add(lease);
        queue.Reserved += contextTokens;
        _running++;
        return lease;
    }

    /// <summary>Gives a lease's positions back; <paramref name="refused"/>: a stage had no room for it after all.</summary>
    internal void Release(AdmissionLease lease, bool refused)
    {
        lock (_gate)
        {
            var queue = _models[lease.Model];
            if (!queue.Running.Remove(lease)) return;
            queue.Reserved -= lease.Tokens;
            if (refused)
            {
                // The stage never held it: its end frees nothing the report counted.
                if (lease.AdmittedAt < queue.ReportSampledAt) queue.CountedInReport -= lease.Tokens;
                queue.RefusedAt = time.GetTimestamp();
            }

            _running--;
            Wake(queue);
        }

        if (refused) LogRefused(lease.Model, lease.Tokens);
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "A stage of {Model} had no room for a request of {Tokens} positions that its last report had room for; the request waits for admission again")]
    private partial void LogRefused(string model, int tokens);
}

/// <summary>An admitted generation's reservation of KV cache positions; disposing it gives them back.</summary>
public sealed class AdmissionLease(AdmissionControl owner, string model, int tokens, long admittedAt) : IDisposable
{
    public string Model => model;

    public int Tokens => tokens;

    /// <summary>When it was admitted (a <see cref="TimeProvider"/> timestamp), to tell it from what a report counted.</summary>
    public long AdmittedAt => admittedAt;

    /// <summary>
    /// A stage turned the request away for want of KV cache: the report was out of date, or another API replica took the
    /// room. Gives the positions back and holds the model's admissions until the stages report again.
    /// </summary>
    public void Refused() => owner.Release(this, refused: true);

    public void Dispose() => owner.Release(this, refused: false);
}
