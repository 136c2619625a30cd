namespace Exo.Gateway.Edge;

/// <summary>The checks every request meets before its endpoint runs.</summary>
public static class EdgeChecks
{
    /// <summary>The per-client rate limit (on the routes that name its policy), then the API key (on every route not open to anonymous callers).</summary>
    public static WebApplication UseEdgeChecks(this WebApplication app)
    {
        app.UseRateLimiter();
        app.UseMiddleware<ApiKeyCheck>();
        return app;
    }
}
