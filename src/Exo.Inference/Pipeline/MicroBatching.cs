namespace Exo.Inference.Pipeline;

/// <summary>
/// How many sequences one step of a stage takes, so that a ring of k stages keeps every stage busy. Were each stage to
/// take all waiting work, the requests in flight would gather into one batch that travels round the ring with only one
/// stage working at a time; capped at a k-th of the open requests, they split into about k micro-batches that follow one
/// another round the ring, each stage working on a different one.
/// </summary>
public static class MicroBatching
{
    /// <summary>
    /// The most sequences a step takes on a stage of a <paramref name="ringStages"/>-stage ring holding
    /// <paramref name="openRequests"/> requests: ceil(open / k), at least one. A 1-stage ring takes them all in one
    /// batch, and a single stream is never held back.
    /// </summary>
    public static int SequenceLimit(int openRequests, int ringStages)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(openRequests);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ringStages);
        return Math.Max(1, (openRequests + ringStages - 1) / ringStages);
    }
}
