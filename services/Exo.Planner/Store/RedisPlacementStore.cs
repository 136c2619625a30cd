using Exo.Contracts.V1;
using Google.Protobuf;
using StackExchange.Redis;

namespace Exo.Planner.Store;

/// <summary>
/// Placements in Redis, shared by every planner instance that points at it and kept across their restarts. The
/// counter <c>{prefix}placements:version</c> hands out versions (INCR); the hash <c>{prefix}placements</c> maps each
/// model id to its latest placement (a protobuf <c>exo.v1.Placement</c>) and the hash <c>{prefix}placements:versions</c>
/// to that placement's version, so that one Lua script can refuse to replace a newer placement with an older one.
/// </summary>
public sealed partial class RedisPlacementStore : IPlacementStore
{
    // Versions stay far below 2^53, so Lua's numbers hold them exactly. A damaged version counts as none.
    private const string SaveScript = """
        local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1])) or 0
        if held >= tonumber(ARGV[2]) then return 0 end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
        return 1
        """;

    private readonly ConnectionMultiplexer _redis;
    private readonly IDatabase _db;
    private readonly RedisKey _counter;
    private readonly RedisKey _placements;
    private readonly RedisKey _versions;
    private readonly ILogger<RedisPlacementStore> _logger;

    private RedisPlacementStore(ConnectionMultiplexer redis, string keyPrefix, ILogger<RedisPlacementStore> logger)
    {
        _redis = redis;
        _db = redis.GetDatabase();
        _counter = keyPrefix + "placements:version";
        _placements = keyPrefix + "placements";
        _versions = keyPrefix + "placements:versions";
        _logger = logger;
    }

    /// <summary>Connects to Redis (a StackExchange.Redis configuration string such as <c>localhost:6379</c>).</summary>
    public static async Task<RedisPlacementStore> ConnectAsync(string configuration, ILogger<RedisPlacementStore> logger, string keyPrefix = "exo:",
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(configuration);
        try
        {
            var redis = await ConnectionMultiplexer.ConnectAsync(configuration).WaitAsync(cancellationToken);
            return new RedisPlacementStore(redis, keyPrefix, logger);
        }
        catch (RedisConnectionException e)
        {
            throw new InvalidOperationException($"cannot connect to Redis at '{configuration}': {e.Message}", e);
        }
    }

    public async Task<long> NextVersionAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _db.StringIncrementAsync(_counter).WaitAsync(cancellationToken);
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

    public async ValueTask DisposeAsync()
    {
        await _redis.CloseAsync();
        _redis.Dispose();
    }
}
