using System.Diagnostics;
using OpenTelemetry.Trace;

namespace Exo.ServiceDefaults;

/// <summary>
/// Keeps the traces a person looks for: a trace begins where a request comes in (a server span). Anything else with no
/// parent is background work (a heartbeat every second per worker, a lease sweep's Redis commands, a watch stream, a
/// health probe) and is dropped; its context still travels, unsampled, so the server side of the same call is dropped
/// too (<see cref="ParentBasedSampler"/>). Left in, they outnumber chat requests a hundred to one in the dashboard.
/// </summary>
public sealed class RequestSampler : Sampler
{
    public static Sampler ParentBased { get; } = new ParentBasedSampler(new RequestSampler());

    public override SamplingResult ShouldSample(in SamplingParameters samplingParameters) =>
        new(samplingParameters.Kind == ActivityKind.Server ? SamplingDecision.RecordAndSample : SamplingDecision.Drop);
}
