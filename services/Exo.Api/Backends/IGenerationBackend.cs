using Exo.Inference.Generation;
using Exo.Inference.Sampling;

namespace Exo.Api.Backends;

/// <summary>
/// What the gateway asks of whatever runs the model: token ids in, sampled tokens out, the output constrained to
/// <paramref name="Output"/> when given. A request resumed on another ring carries the <paramref name="Generated"/> tokens
/// it had produced at the end of its prompt, which the constraint takes as its output so far.
/// </summary>
public sealed record GenerationRequest(
    int[] Prompt,
    SamplingParameters Sampling,
    int MaxTokens,
    IReadOnlySet<int> EndTokens,
    int? TopLogprobs,
    OutputConstraint? Output = null,
    int Generated = 0);

/// <summary>One sampled token; the last carries the finish reason.</summary>
public readonly record struct GenerationEvent(int Token, FinishReason? Finish, TokenLogprobs? Logprobs);

/// <summary>A stage of the model as placed on a node, for the cluster view; while the node fetches its layers from a peer, the bytes it has of those it needs.</summary>
public sealed record StageView(string NodeId, string Endpoint, int LayerStart, int LayerEnd, int ActiveRequests, long FetchedBytes = 0, long FetchTotalBytes = 0);

/// <summary>The cluster as the gateway sees it: its members, and the placement of each model.</summary>
public sealed record ClusterView(IReadOnlyList<NodeView> Nodes, IReadOnlyList<PlacementView> Placements);

public sealed record NodeView(string NodeId, string Endpoint, string Host, string Backend, long TotalMemoryBytes, long AvailableMemoryBytes, bool Healthy);

/// <summary>
/// A model's placement: its rings (replicas), <paramref name="Ready"/> when every one of them serves; <paramref name="Problem"/>
/// says why it cannot be served when it has none.
/// </summary>
public sealed record PlacementView(string Model, long Version, bool Ready, IReadOnlyList<RingView> Rings, string? Problem = null);

/// <summary>One ring of a model: its version, whether every stage serves it, and the requests this API has open on it.</summary>
public sealed record RingView(long Version, bool Ready, int Requests, IReadOnlyList<StageView> Stages);

/// <summary>
/// The KV cache a model's ring has left, in positions of context (a request reserves prompt + max tokens of them on every
/// stage): the fewest any stage has free, the fewest any stage holds with no request open, and when the stages were asked
/// (a <see cref="System.Diagnostics.Stopwatch"/> timestamp), which tells the requests admitted since from those counted.
/// </summary>
public sealed record KvRoom(long FreeTokens, long CapacityTokens, long SampledAt);

/// <summary>No placement of the model is ready (no workers, or a re-plan in progress): the client should retry (503).</summary>
public sealed class BackendUnavailableException(string message) : Exception(message);

/// <summary>The engine failed the request (a worker's error, or the local runtime's): 502 with its explanation.</summary>
public sealed class BackendFailedException(string message) : Exception(message);

/// <summary>Every slot is busy: the client should retry later (429).</summary>
public sealed class BackendSaturatedException(string message) : Exception(message);

/// <summary>Runs prompts through the model: in this process, or round a ring of shard workers.</summary>
public interface IGenerationBackend
{
    /// <summary>
    /// Streams the tokens of one generation. Disposing the enumeration early (client gone, stop sequence found)
    /// cancels the request everywhere it holds memory.
    /// </summary>
    IAsyncEnumerable<GenerationEvent> GenerateAsync(string model, GenerationRequest request, CancellationToken cancellationToken);

    /// <summary>The KV cache the model's ring has left, as last reported; null while no ring of it is ready.</summary>
    KvRoom? Room(string model);

    ClusterView Describe();
}
