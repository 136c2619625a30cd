namespace Exo.Hub;

/// <summary>An HttpClient as the sources need it: redirects left to them (so credentials stay with their origin), no overall timeout (downloads are long; the downloader times out silence instead).</summary>
public static class HubHttp
{
    public static HttpClient CreateClient() => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        ConnectTimeout = TimeSpan.FromSeconds(15),
        AutomaticDecompression = System.Net.DecompressionMethods.None,
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
        DefaultRequestHeaders = { { "User-Agent", "exo-dotnet/1.0" } },
    };
}
