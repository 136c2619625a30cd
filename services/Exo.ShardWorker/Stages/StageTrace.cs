using System.Diagnostics;

namespace Exo.ShardWorker.Stages;

/// <summary>
/// One request's spans on this stage, children of the API's span for it: a span per prefill, and decode steps gathered
/// into spans of <see cref="StepsPerSpan"/> tokens with an event per step (its position, the requests open on the
/// stage, whose steps are batched together, and the step's milliseconds). A 400-token answer over three stages reads
/// as a few dozen spans, not twelve hundred, and every token's timing is still there.
/// </summary>
public sealed class StageTrace(ActivitySource tracing, ActivityContext parent, string requestId, string layers, TimeProvider time) : IDisposable
{
    public const int StepsPerSpan = 32;

    private Activity? _prefill;
    private Activity? _decode;
    private int _steps;
    private int _position;
    private int _requestsOpen;
    private long _stepStarted;

    /// <summary>A step of <paramref name="rows"/> positions from <paramref name="position"/> goes into the runtime with <paramref name="requestsOpen"/> requests open.</summary>
    public void Began(int position, int rows, int requestsOpen)
    {
        (_position, _requestsOpen, _stepStarted) = (position, requestsOpen, time.GetTimestamp());
        if (rows > 1 || position == 0)
        {
            EndDecode();
            _prefill = Start("stage prefill")?.SetTag("exo.position", position).SetTag("exo.rows", rows).SetTag("exo.requests_open", requestsOpen);
            return;
        }

        _decode ??= Start("stage decode")?.SetTag("exo.first_position", position);
    }

    /// <summary>The step begun last came out of the runtime.</summary>
    public void Ended()
    {
        if (_prefill is not null)
        {
            _prefill.Dispose();
            _prefill = null;
            return;
        }

        if (_decode is null) return;
        _decode.AddEvent(new ActivityEvent("token", tags: new ActivityTagsCollection
        {
            ["exo.position"] = _position,
            ["exo.requests_open"] = _requestsOpen,
            ["exo.step_ms"] = Math.Round(time.GetElapsedTime(_stepStarted).TotalMilliseconds, 3),
        }));
        if (++_steps == StepsPerSpan) EndDecode();
    }

    public void Dispose()
    {
        _prefill?.Dispose();
        _prefill = null;
        EndDecode();
    }

    private Activity? Start(string name) =>
        tracing.StartActivity(name, ActivityKind.Internal, parent)?.SetTag("exo.request_id", requestId).SetTag("exo.layers", layers);

    private void EndDecode()
    {
        _decode?.SetTag("exo.last_position", _position).SetTag("exo.steps", _steps).Dispose();
        (_decode, _steps) = (null, 0);
    }
}
