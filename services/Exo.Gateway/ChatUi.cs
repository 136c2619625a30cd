namespace Exo.Gateway;

/// <summary>The web chat at "/": one static page, embedded in the assembly so the gateway is a single deployable.</summary>
public static class ChatUi
{
    public static IEndpointRouteBuilder MapChatUi(this IEndpointRouteBuilder app)
    {
        var page = ReadPage();
        app.MapGet("/", () => Results.Text(page, "text/html; charset=utf-8"));
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
