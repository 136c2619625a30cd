using System.Buffers;
using System.Text.Json;
using Exo.Api.Completions;
using Exo.Api.OpenAi;

namespace Exo.Api.Apis;

/// <summary>What every API's endpoints share: reading a request into its prompt, and writing a whole JSON answer.</summary>
internal static class EndpointIo
{
    /// <summary>
    /// Reads the body (bounded by the reader), then parses, renders and tokenizes it in the gate's turn: a slow upload
    /// holds no turn while it arrives.
    /// </summary>
    public static async Task<T> PrepareAsync<T>(HttpContext http, RequestBodyReader body, PromptGate gate, Func<JsonElement, T> prepare, CancellationToken cancellationToken)
    {
        var json = await body.ReadAsync(http, cancellationToken);
        using (await gate.EnterAsync(http.Request, cancellationToken)) return prepare(json);
    }

    /// <summary>
    /// Writes the whole body before the response starts: a failure while writing then still gets its error answer,
    /// where a response already begun (a 200 with no body) could only be cut off.
    /// </summary>
    public static async Task WriteJson(HttpContext http, int status, Action<Utf8JsonWriter> write)
    {
        var body = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(body, OpenAiJson.WriterOptions)) write(writer);
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        http.Response.ContentLength = body.WrittenCount;
        await http.Response.Body.WriteAsync(body.WrittenMemory, http.RequestAborted);
    }
}
