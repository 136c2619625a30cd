namespace Exo.AppHost.Tests;

/// <summary>Reading the gateway's /api/cluster into the AppHost's "ready:" and "waiting" lines.</summary>
public sealed class ClusterStatusTests
{
    private static readonly Dictionary<int, string> Workers = new() { [6001] = "worker-1", [6002] = "worker-2" };

    private const string Ready = """
        {"nodes":[{"nodeId":"n1"},{"nodeId":"n2"}],"healthy":true,"placements":[{"model":"exo-tiny","version":3,"ready":true,"rings":[{"version":3,"ready":true,"requests":0,"stages":[
          {"nodeId":"n1","endpoint":"http://127.0.0.1:6001","layerStart":0,"layerEnd":5,"activeRequests":0},
          {"nodeId":"n2","endpoint":"http://127.0.0.1:6002","layerStart":5,"layerEnd":8,"activeRequests":0}]}]}]}
        """;

    [Fact]
    public void AReadyClusterIsDescribedByWorkerNamesAndLayerRanges()
    {
        var status = ClusterStatus.Parse(Ready, Workers, workers: 2);

        Assert.True(status.Ready);
        Assert.Equal("exo-tiny on 2 workers, layers [0, 5) worker-1, [5, 8) worker-2", status.Summary);
    }

    private const string TwoRings = """
        {"nodes":[{"nodeId":"n1"},{"nodeId":"n2"}],"healthy":true,"placements":[{"model":"exo-tiny","version":5,"ready":true,"rings":[
          {"version":3,"ready":true,"requests":1,"stages":[{"nodeId":"n1","endpoint":"http://127.0.0.1:6001","layerStart":0,"layerEnd":8,"activeRequests":1}]},
          {"version":4,"ready":true,"requests":0,"stages":[{"nodeId":"n2","endpoint":"http://127.0.0.1:6002","layerStart":0,"layerEnd":8,"activeRequests":0}]}]}]}
        """;

    [Fact]
    public void SeveralRingsAreNamedOneByOne()
    {
        var status = ClusterStatus.Parse(TwoRings, Workers, workers: 2);

        Assert.True(status.Ready);
        Assert.Equal("exo-tiny on 2 workers, 2 rings: ring 1 layers [0, 8) worker-1; ring 2 layers [0, 8) worker-2", status.Summary);
        // A third worker could still join a ring as an extra stage: not yet the cluster asked for.
        Assert.False(ClusterStatus.Parse(TwoRings, Workers, workers: 3).Ready);
    }

    [Fact]
    public void AStageOnAnUnknownEndpointIsNamedByItsNodeId()
    {
        var status = ClusterStatus.Parse(Ready.Replace("6002", "7000"), Workers, workers: 2);

        Assert.Equal("exo-tiny on 2 workers, layers [0, 5) worker-1, [5, 8) n2", status.Summary);
    }

    [Fact]
    public void ALoadingClusterSaysWhatItWaitsFor()
    {
        var loading = ClusterStatus.Parse(Ready.Replace("\"healthy\":true", "\"healthy\":false").Replace("\"ready\":true", "\"ready\":false"), Workers, workers: 2);
        var empty = ClusterStatus.Parse("""{"nodes":[{"nodeId":"n1"}],"healthy":false,"placements":[]}""", Workers, workers: 2);

        Assert.False(loading.Ready);
        Assert.Equal("2 of 2 workers registered, exo-tiny on 2 workers, layers [0, 5) worker-1, [5, 8) worker-2 (loading)", loading.Summary);
        Assert.False(empty.Ready);
        Assert.Equal("1 of 2 workers registered, no placement yet", empty.Summary);
    }

    [Fact]
    public void ARingMadeBeforeTheLastWorkerJoinedIsNotReadyYet()
    {
        var early = ClusterStatus.Parse(Ready, Workers, workers: 3);
        // A two-layer model cannot use more than two workers: two stages are all of it.
        var twoLayers = Ready.Replace("\"layerEnd\":5", "\"layerEnd\":1").Replace("\"layerStart\":5,\"layerEnd\":8", "\"layerStart\":1,\"layerEnd\":2");

        Assert.False(early.Ready);
        Assert.Equal("2 of 3 workers registered, exo-tiny on 2 workers, layers [0, 5) worker-1, [5, 8) worker-2", early.Summary);
        Assert.True(ClusterStatus.Parse(twoLayers, Workers, workers: 3).Ready);
    }

    [Fact]
    public void APlacementThatCannotBeMadeSaysWhy()
    {
        var status = ClusterStatus.Parse("""
            {"nodes":[{"nodeId":"n1"}],"healthy":false,"placements":[{"model":"big","version":0,"ready":false,"rings":[],
              "problem":"needs 9.1 GB, the cluster has 6.0 GB free"}]}
            """, Workers, workers: 1);

        Assert.False(status.Ready);
        Assert.Equal("1 of 1 workers registered, big: needs 9.1 GB, the cluster has 6.0 GB free", status.Summary);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("""{"healthy":true}""")]
    [InlineData("""{"nodes":[],"healthy":"yes","placements":[]}""")]
    [InlineData("""{"nodes":[],"healthy":true,"placements":[{"model":"m","ready":true,"rings":[{"stages":[{"endpoint":"x","layerStart":"0"}]}]}]}""")]
    [InlineData("""{"nodes":[],"healthy":true,"placements":[{"model":"m","ready":true,"stages":[]}]}""")]
    [InlineData("[]")]
    public void AnAnswerOfTheWrongShapeIsNeverReady(string json)
    {
        var status = ClusterStatus.Parse(json, Workers, workers: 2);

        Assert.False(status.Ready);
        Assert.StartsWith("the gateway's /api/cluster answer is not understood", status.Summary);
    }
}
