using System.Buffers;
using System.Text.Json;
using Exo.Api.OpenAi;
using Microsoft.AspNetCore.Http.Features;

namespace Exo.Api.Ollama;

/// <summary>A 200 response of newline-delimited JSON objects, as Ollama streams, each flushed at once so every token reaches the client as it comes.</summary>
internal sealed class NdjsonWriter(HttpResponse response)
{
    public const string ContentType = "application/x-ndjson";

    private readonly ArrayBufferWriter<byte> _buffer = new(1024);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        response.StatusCode = 200;
        response.ContentType = ContentType;
        response.HttpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.Body.FlushAsync(cancellationToken);
    }

    public async Task WriteAsync(Action<Utf8JsonWriter> write, CancellationToken cancellationToken)
    {
        _buffer.ResetWrittenCount();
        using (var writer = new Utf8JsonWriter(_buffer, OpenAiJson.WriterOptions)) write(writer);
        _buffer.Write("\n"u8);
        await response.Body.WriteAsync(_buffer.WrittenMemory, cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }
}
