namespace Exo.Registry.Tests;

/// <summary>The tests that share one real redis-server (xunit finds collection definitions only in the test assembly itself).</summary>
[CollectionDefinition(Name)]
public sealed class RedisCollection : ICollectionFixture<RedisServer>
{
    public const string Name = "redis";
}
