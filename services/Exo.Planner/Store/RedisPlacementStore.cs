using Exo.Contracts.V1;
using Google.Protobuf;
using StackExchange.Redis;

namespace Exo.Planner.Store;

/// <summary>
/// Placements in Redis, shared by every planner instance that points at it and kept across their restarts. The
/// counter <c>{prefix}placements:version</c> hands out versions (INCR, raised to the caller's floor); the hash <c>{prefix}placements</c> maps each
/// model id to its latest placement (a protobuf <c>exo.v1.Placement</c>) and the hash <c>{prefix}placements:versions</c>
/// to that placement's version, so that one Lua script can refuse to replace a newer placement with an older one.
/// </summary>
public sealed partial class RedisPlacementStore : IPlacementStore, IHostedService
{
    // Versions stay far below 2^53, so Lua's numbers hold them exactly. A damaged version counts as none.
    private const string SaveScript = """
        local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1])) or 0
        if held >= tonumber(ARGV[2]) then return 0 end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
        return 1
        """;

    // INCR fails on a counter that is not an integer, so a damaged one is reported rather than overwritten.
    private const string NextVersionScript = """
        local version = redis.call('INCR', KEYS[1])
        local floor = tonumber(ARGV[1])
        if version < floor then
          redis.call('SET', KEYS[1], ARGV[1])
          version = floor
        end
        return version
        """;

    private readonly IConnectionMultiplexer _redis;
    private readonly IDatabase _db;
    private readonly RedisKey _counter;
    private readonly RedisKey _placements;
    private readonly RedisKey _versions;
    private readonly ILogger<RedisPlacementStore> _logger;

    /// <param name="redis">The service's connection (Aspire's <c>AddRedisClient</c>); the store uses it and leaves closing it to its owner.</param>
    public RedisPlacementStore(IConnectionMultiplexer redis, ILogger<RedisPlacementStore> logger, string keyPrefix = "exo:")
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentException.ThrowIfNullOrWhiteSpace(keyPrefix);
        _redis = redis;
        _db = redis.GetDatabase();
        _counter = keyPrefix + "placements:version";
        _placements = keyPrefix + "placements";
        _versions = keyPrefix + "placements:versions";
        _logger = logger;
    }

    /// <summary>
    /// Checks that Redis answers. The planner runs this as it starts, before it restores placements or listens: one that
    /// cannot reach its Redis stops at once, naming the address it tried.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // The connection's first attempt is over by now (Aspire connects when the store is made): not connected means unreachable.
        if (!_redis.IsConnected) throw Unreachable("no connection within the connect timeout", null);
        try
        {
            await _db.PingAsync().WaitAsync(cancellationToken);
        }
        catch (Exception e) when (e is RedisConnectionException or RedisTimeoutException)
        {
            throw Unreachable(e.Message, e);
        }
    }

    private InvalidOperationException Unreachable(string reason, Exception? inner) => new(
        $"cannot reach Redis at {string.Join(", ", _redis.GetEndPoints(configuredOnly: true).Select(EndPointCollection.ToString))} "
        + $"(connection string 'redis', ConnectionStrings__redis): {reason}; is redis-server running there?", inner);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task<long> NextVersionAsync(long atLeast, CancellationToken cancellationToken)
    {
        try
        {
            return (long)await _db.ScriptEvaluateAsync(NextVersionScript, [_counter], [atLeast]).WaitAsync(cancellationToken);
        }
        catch (RedisServerException e)
        {
            throw new InvalidDataException($"Redis key {_counter} does not hold a version counter ({e.Message}); delete it to start the versions again", e);
        }
    }

    public async Task<bool> SaveAsync(Placement placement, CancellationToken cancellationToken)
    {
        PlacementRules.Validate(placement);
        var saved = await _db.ScriptEvaluateAsync(SaveScript, [_placements, _versions],
            [placement.ModelId, (long)placement.Version, placement.ToByteArray()]).WaitAsync(cancellationToken);
        return (long)saved == 1;
    }

    public async Task<IReadOnlyList<Placement>> LoadAsync(CancellationToken cancellationToken)
    {
        var entries = await _db.HashGetAllAsync(_placements).WaitAsync(cancellationToken);
        var placements = new List<Placement>(entries.Length);
        foreach (var entry in entries)
        {
            var model = (string?)entry.Name ?? "";
            if (Parse(model, (byte[]?)entry.Value) is { } placement) placements.Add(placement);
        }

        return placements.OrderBy(p => p.ModelId, StringComparer.Ordinal).ToArray();
    }

    private Placement? Parse(string model, byte[]? bytes)
    {
        string problem;
        try
        {
            var placement = Placement.Parser.ParseFrom(bytes ?? []);
            problem = PlacementRules.Problem(placement) ?? (placement.ModelId == model ? "" : $"it is filed under '{model}' but places '{placement.ModelId}'");
            if (problem.Length == 0) return placement;
        }
        catch (InvalidProtocolBufferException e)
        {
            problem = $"not a protobuf exo.v1.Placement: {e.Message}";
        }

        // One damaged entry must not hide the other models' placements; re-planning writes a good one.
        LogDamaged(_placements.ToString(), model, problem);
        return null;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipping the placement of {Model} in Redis hash {Key}: {Problem}")]
    private partial void LogDamaged(string key, string model, string problem);
}
