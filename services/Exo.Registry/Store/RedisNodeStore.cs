using System.Globalization;
using System.Text.Json;
using Exo.Contracts;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Exo.Registry.Store;

/// <summary>
/// Membership in Redis, shared by every registry instance that points at it. Each node is a hash
/// <c>{prefix}node:{id}</c> (instance token, record JSON, lease TTL, registered and last-seen times) whose key
/// expires with the lease; the hash <c>{prefix}nodes</c> lists every id with its last record, so that the expiry sweep
/// can tell watchers which node left. Changes travel on the pub/sub channel <c>{prefix}nodes:changes</c>. Every
/// read-modify-write is one Lua script, so two registry instances never interleave.
/// </summary>
public sealed class RedisNodeStore : INodeStore, IHostedService
{
    private const string RegisterScript = """
        local held = redis.call('HGET', KEYS[1], 'token')
        if held and held ~= ARGV[2] then return {'conflict', redis.call('HGET', KEYS[1], 'record'), redis.call('HGET', KEYS[1], 'ttl')} end
        local registered = redis.call('HGET', KEYS[1], 'registered') or ARGV[5]
        redis.call('HSET', KEYS[1], 'token', ARGV[2], 'record', ARGV[3], 'ttl', ARGV[4], 'registered', registered, 'seen', ARGV[5])
        redis.call('PEXPIRE', KEYS[1], ARGV[4])
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
        if held then return {'updated', registered} end
        return {'added', registered}
        """;

    private const string HeartbeatScript = """
        local held = redis.call('HGET', KEYS[1], 'token')
        if not held then return 0 end
        if held ~= ARGV[1] then return -1 end
        redis.call('HSET', KEYS[1], 'seen', ARGV[2])
        redis.call('PEXPIRE', KEYS[1], redis.call('HGET', KEYS[1], 'ttl'))
        return 1
        """;

    private const string DeregisterScript = """
        local held = redis.call('HGET', KEYS[1], 'token')
        if not held then return {'absent'} end
        if held ~= ARGV[2] then return {'conflict'} end
        local record = redis.call('HGET', KEYS[1], 'record')
        redis.call('DEL', KEYS[1])
        redis.call('HDEL', KEYS[2], ARGV[1])
        return {'removed', record}
        """;

    // Removes an id from the index once its lease key has expired, returning its last record; only the one
    // instance whose script removes it reports the change.
    private const string SweepScript = """
        if redis.call('EXISTS', KEYS[1]) == 1 then return false end
        local last = redis.call('HGET', KEYS[2], ARGV[1])
        if not last then return false end
        redis.call('HDEL', KEYS[2], ARGV[1])
        return last
        """;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly IConnectionMultiplexer _redis;
    private readonly IDatabase _db;
    private readonly ISubscriber _subscriber;
    private readonly string _prefix;
    private readonly RedisKey _index;
    private readonly RedisChannel _changes;
    private readonly ChangeFeed _feed = new();
    private readonly TimeSpan _sweepInterval;
    private readonly TimeProvider _time;
    private readonly ILogger<RedisNodeStore> _logger;
    private LeaseSweeper? _sweeper;
    private ChannelMessageQueue? _changeQueue;
    private int _stopped;

    /// <param name="redis">The service's connection (Aspire's <c>AddRedisClient</c>); the store uses it and leaves closing it to its owner.</param>
    public RedisNodeStore(IConnectionMultiplexer redis, ILogger<RedisNodeStore> logger, string keyPrefix = "exo:", TimeSpan? sweepInterval = null,
        TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentException.ThrowIfNullOrWhiteSpace(keyPrefix);
        _sweepInterval = sweepInterval ?? NodeStoreDefaults.SweepInterval;
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(_sweepInterval, TimeSpan.Zero, nameof(sweepInterval));
        _redis = redis;
        _db = redis.GetDatabase();
        _subscriber = redis.GetSubscriber();
        _prefix = keyPrefix;
        _index = keyPrefix + "nodes";
        _changes = RedisChannel.Literal(keyPrefix + "nodes:changes");
        _time = time ?? TimeProvider.System;
        _logger = logger;
    }

    /// <summary>
    /// Checks that Redis answers, follows the change channel and starts the expiry sweep. The registry runs this as it
    /// starts, before it listens: one that cannot reach its Redis stops at once, naming the address it tried.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_sweeper is not null) throw new InvalidOperationException("the node store is already started");
        // The connection's first attempt is over by now (Aspire connects when the store is made): not connected means unreachable.
        if (!_redis.IsConnected) throw Unreachable("no connection within the connect timeout", null);
        try
        {
            await _db.PingAsync().WaitAsync(cancellationToken);
            // A queue, not a handler: handlers may run concurrently and reorder the changes; a queue hands them on in order.
            _changeQueue = await _subscriber.SubscribeAsync(_changes).WaitAsync(cancellationToken);
            _changeQueue.OnMessage(m => OnChangeMessage(m.Channel, m.Message));
        }
        catch (Exception e) when (e is RedisConnectionException or RedisTimeoutException)
        {
            throw Unreachable(e.Message, e);
        }

        _sweeper = new LeaseSweeper(_sweepInterval, _time, SweepAsync, _logger);
    }

    private InvalidOperationException Unreachable(string reason, Exception? inner) => new(
        $"cannot reach Redis at {string.Join(", ", _redis.GetEndPoints(configuredOnly: true).Select(EndPointCollection.ToString))} "
        + $"(connection string 'redis', ConnectionStrings__redis): {reason}; is redis-server running there?", inner);

    /// <summary>Stops the sweep and ends every watch; the registry is stopping.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1) return;
        if (_sweeper is not null)
        {
            await _sweeper.DisposeAsync();
            // Fire and forget: a stopping registry must not wait on a Redis that may be gone.
            if (_changeQueue is not null) await _changeQueue.UnsubscribeAsync(CommandFlags.FireAndForget);
        }

        _feed.Complete();
    }

    private RedisKey NodeKey(string nodeId) => _prefix + "node:" + nodeId;

    public async Task<NodeRecord> RegisterAsync(NodeRecord node, TimeSpan leaseTtl, CancellationToken cancellationToken)
    {
        NodeStoreDefaults.ValidateRegistration(node, leaseTtl);
        var now = _time.GetUtcNow();
        var json = JsonSerializer.Serialize(node with { RegisteredAt = default, LastSeenAt = default }, Json);
        var result = (RedisResult[])(await _db.ScriptEvaluateAsync(RegisterScript, [NodeKey(node.NodeId), _index],
            [node.NodeId, node.InstanceToken, json, (long)leaseTtl.TotalMilliseconds, now.ToUnixTimeMilliseconds()]).WaitAsync(cancellationToken))!;

        var outcome = (string?)result[0];
        if (outcome == "conflict")
        {
            var holder = ParseRecord((string?)result[1], NodeKey(node.NodeId));
            throw NodeConflictException.For(holder, node.Host, TimeSpan.FromMilliseconds(ParseMilliseconds((string?)result[2], NodeKey(node.NodeId))));
        }

        var stored = node with { RegisteredAt = ParseTime((string?)result[1], NodeKey(node.NodeId)), LastSeenAt = now };
        await PublishAsync(new NodeChange(outcome == "added" ? NodeChangeKind.Added : NodeChangeKind.Updated, stored), cancellationToken);
        return stored;
    }

    public async Task<bool> HeartbeatAsync(string nodeId, string instanceToken, CancellationToken cancellationToken)
    {
        if (!NodeIdentity.IsValid(nodeId)) return false;
        var result = (long)(await _db.ScriptEvaluateAsync(HeartbeatScript, [NodeKey(nodeId)],
            [instanceToken, _time.GetUtcNow().ToUnixTimeMilliseconds()]).WaitAsync(cancellationToken));
        return result >= 0 ? result == 1 : throw NodeConflictException.ForToken(nodeId);
    }

    public async Task<bool> DeregisterAsync(string nodeId, string instanceToken, CancellationToken cancellationToken)
    {
        if (!NodeIdentity.IsValid(nodeId)) return false;
        var result = (RedisResult[])(await _db.ScriptEvaluateAsync(DeregisterScript, [NodeKey(nodeId), _index],
            [nodeId, instanceToken]).WaitAsync(cancellationToken))!;
        switch ((string?)result[0])
        {
            case "absent":
                return false;
            case "conflict":
                throw NodeConflictException.ForToken(nodeId);
            default:
                await PublishAsync(new NodeChange(NodeChangeKind.Removed, ParseRecord((string?)result[1], NodeKey(nodeId))), cancellationToken);
                return true;
        }
    }

    public async Task<IReadOnlyList<NodeRecord>> ListAsync(CancellationToken cancellationToken)
    {
        var ids = await _db.HashKeysAsync(_index).WaitAsync(cancellationToken);
        var reads = ids.Select(id => (Key: NodeKey((string)id!), Fields: _db.HashGetAllAsync(NodeKey((string)id!)))).ToArray();
        var nodes = new List<NodeRecord>(reads.Length);
        foreach (var (key, fields) in reads)
        {
            var hash = (await fields.WaitAsync(cancellationToken)).ToDictionary(e => (string)e.Name!, e => (string?)e.Value);
            if (hash.Count == 0) continue; // expired, not swept yet
            try
            {
                nodes.Add(ParseRecord(hash.GetValueOrDefault("record"), key) with
                {
                    RegisteredAt = ParseTime(hash.GetValueOrDefault("registered"), key),
                    LastSeenAt = ParseTime(hash.GetValueOrDefault("seen"), key),
                });
            }
            catch (InvalidDataException e)
            {
                // One damaged entry must not hide the rest of the cluster.
                _logger.LogWarning(e, "skipping a node");
            }
        }

        return nodes.OrderBy(n => n.NodeId, StringComparer.Ordinal).ToArray();
    }

    public IAsyncEnumerable<NodeChange> WatchAsync(CancellationToken cancellationToken) => _feed.WatchAsync(ListAsync, cancellationToken);

    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        foreach (var id in await _db.HashKeysAsync(_index).WaitAsync(cancellationToken))
        {
            var key = NodeKey((string)id!);
            var last = await _db.ScriptEvaluateAsync(SweepScript, [key, _index], [id]).WaitAsync(cancellationToken);
            if (last.IsNull) continue;
            _logger.LogInformation("node {NodeId} left: its lease expired", (string?)id);
            await PublishAsync(new NodeChange(NodeChangeKind.Removed, ParseRecord((string?)last, key)), cancellationToken);
        }
    }

    private Task PublishAsync(NodeChange change, CancellationToken cancellationToken) =>
        _subscriber.PublishAsync(_changes, JsonSerializer.Serialize(change, Json)).WaitAsync(cancellationToken);

    private void OnChangeMessage(RedisChannel channel, RedisValue message)
    {
        try
        {
            var change = JsonSerializer.Deserialize<NodeChange>((string)message!, Json);
            if (change?.Node is null || !Enum.IsDefined(change.Kind)) throw new JsonException("not a node change");
            change.Node.Validate();
            _feed.Publish(change);
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            // Anyone with access to Redis can publish here; a malformed message must not stop the feed.
            _logger.LogWarning(e, "ignoring a malformed message on {Channel}", (string?)channel);
        }
    }

    private static NodeRecord ParseRecord(string? json, RedisKey key)
    {
        try
        {
            var record = JsonSerializer.Deserialize<NodeRecord>(json ?? throw new JsonException("no record"), Json)
                         ?? throw new JsonException("null record");
            record.Validate();
            return record;
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new InvalidDataException($"Redis key {key} holds an invalid node record ({e.Message}); delete the key and let the node register again", e);
        }
    }

    private static long ParseMilliseconds(string? text, RedisKey key) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var ms) && ms <= 253402300799999
            ? ms
            : throw new InvalidDataException($"Redis key {key} holds an invalid time or duration '{text}'");

    private static DateTimeOffset ParseTime(string? text, RedisKey key) => DateTimeOffset.FromUnixTimeMilliseconds(ParseMilliseconds(text, key));

    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None);
}
