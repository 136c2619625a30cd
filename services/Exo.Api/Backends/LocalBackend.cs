using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Exo.Api.Models;
using Exo.Inference.Backends;
using Exo.Inference.Model;
using Exo.Inference.Pipeline;

namespace Exo.Api.Backends;

/// <summary>
/// Runs each model whole in this process, on the same <see cref="StageRuntime"/> a shard worker uses, so concurrent
/// requests are batched. For a single machine, and for tests of the API without a cluster.
/// </summary>
public sealed class LocalBackend : IGenerationBackend, IAsyncDisposable
{
    private readonly Dictionary<string, (IModelStage Stage, StageRuntime Runtime)> _models = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Channel<StageResult>> _requests = new(StringComparer.Ordinal);
    private readonly List<Task> _dispatchers = [];

    public LocalBackend(ModelCatalog catalog, long kvBudgetBytes)
    {
        foreach (var model in catalog.Models)
        {
            var stage = StageLoader.Load(model.Directory, null, new BackendOptions());
            var runtime = new StageRuntime(stage, kvBudgetBytes, model.Grammars);
            _models.Add(model.Id, (stage, runtime));
            _dispatchers.Add(Task.Run(() => DispatchAsync(runtime)));
        }
    }

    /// <summary>Routes each result to the request that waits for it; results of abandoned requests are dropped.</summary>
    private async Task DispatchAsync(StageRuntime runtime)
    {
        await foreach (var result in runtime.Results.ReadAllAsync())
        {
            if (_requests.TryGetValue(result.RequestId, out var channel)) channel.Writer.TryWrite(result);
        }
    }

    public async IAsyncEnumerable<GenerationEvent> GenerateAsync(string model, GenerationRequest request,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!_models.TryGetValue(model, out var entry)) throw new BackendUnavailableException($"model '{model}' is not loaded");
        var runtime = entry.Runtime;
        var id = Guid.NewGuid().ToString("N");
        var options = new RequestOptions(request.Prompt.Length + request.MaxTokens, request.Sampling, request.MaxTokens,
            request.EndTokens, request.Prompt, request.TopLogprobs, request.Output, request.Generated);
        var channel = Channel.CreateUnbounded<StageResult>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        _requests[id] = channel;
        try
        {
            try
            {
                runtime.Open(id, options);
            }
            catch (StageCapacityException e)
            {
                throw new BackendSaturatedException(e.Message);
            }

            runtime.Submit(new StageWork(id, request.Prompt, null, request.Prompt.Length));
            while (true)
            {
                var result = await channel.Reader.ReadAsync(cancellationToken);
                if (result is FailedResult failed) throw new BackendFailedException(failed.Error);
                var token = (TokenResult)result;
                yield return new GenerationEvent(token.Token, token.Finish, token.Logprobs);
                if (token.Finish is not null) yield break;
                runtime.Submit(new StageWork(id, [token.Token], null, 1));
            }
        }
        finally
        {
            _requests.TryRemove(id, out _);
            runtime.Close(id);
        }
    }

    /// <summary>
    /// The whole budget, as of no time at all: the runtime serves this process alone, whose admission counts every request
    /// it lets in, so it needs no report of what is in use.
    /// </summary>
    public KvRoom? Room(string model) => _models.TryGetValue(model, out var entry) ? new KvRoom(entry.Runtime.CapacityTokens, entry.Runtime.CapacityTokens, 0) : null;

    public ClusterView Describe()
    {
        var host = Environment.MachineName;
        var stages = _models.Select(m => new PlacementView(m.Key, 1, true,
            [new RingView(1, true, m.Value.Runtime.ActiveRequests, [new StageView(host, "in-process", 0, m.Value.Stage.Config.LayerCount, m.Value.Runtime.ActiveRequests)])])).ToList();
        var memory = GC.GetGCMemoryInfo();
        var backend = _models.Values.Select(m => m.Stage.Backend).FirstOrDefault() ?? "cpu";
        return new ClusterView([new NodeView(host, "in-process", host, backend, memory.TotalAvailableMemoryBytes, memory.TotalAvailableMemoryBytes - memory.MemoryLoadBytes, true)], stages);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (stage, runtime) in _models.Values)
        {
            await runtime.DisposeAsync();
            stage.Dispose();
        }

        await Task.WhenAll(_dispatchers);
    }
}
