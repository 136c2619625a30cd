using StackExchange.Redis;

namespace Exo.Testing;

/// <summary>
/// A test's own key space on the shared Redis server, and the connections it opens there, each its own as each service
/// process has one; all closed when the test ends.
/// </summary>
public sealed class RedisKeyspace : IAsyncDisposable
{
    private readonly List<ConnectionMultiplexer> _connections = [];

    public string Prefix { get; } = $"test-{Guid.NewGuid():N}:";

    public async Task<ConnectionMultiplexer> ConnectAsync(string configuration)
    {
        var connection = await ConnectionMultiplexer.ConnectAsync(configuration);
        _connections.Add(connection);
        return connection;
    }

    /// <summary>Closes every connection opened so far, as the processes holding them stopping would.</summary>
    public async Task CloseAllAsync()
    {
        foreach (var connection in _connections) await connection.CloseAsync();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _connections) await connection.DisposeAsync();
    }
}
