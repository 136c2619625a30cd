namespace Exo.Gateway;

/// <summary>
/// The web chat at "/": one static page, embedded in the assembly so the gateway is a single deployable. The page itself
/// is open to anyone, so that it can ask for an API key; everything it fetches needs one when keys are configured.
/// </summary>
public static class ChatUi
{
    public static IEndpointRouteBuilder MapChatUi(this IEndpointRouteBuilder app)
    {
        var page = ReadPage();
        app.MapGet("/", () => Results.Text(page, "text/html; charset=utf-8")).AllowAnonymous();
        return app;
    }

    private static string ReadPage()
    {
        using var stream = typeof(ChatUi).Assembly.GetManifestResourceStream("Exo.Gateway.wwwroot.index.html")
                           ?? throw new InvalidOperationException("the web chat page is not embedded in the gateway assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
