using System.Buffers;
using System.Text.Json;

namespace Exo.Api.OpenAi;

/// <summary>Writes server-sent events of JSON data, flushed one by one so each token reaches the client at once.</summary>
internal sealed class SseWriter(Stream body)
{
    private static readonly byte[] Prefix = "data: "u8.ToArray();
    private static readonly byte[] Separator = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();
    private readonly ArrayBufferWriter<byte> _buffer = new(1024);

    public async Task WriteAsync(Action<Utf8JsonWriter> write, CancellationToken cancellationToken)
    {
        _buffer.ResetWrittenCount();
        _buffer.Write(Prefix);
        using (var writer = new Utf8JsonWriter(_buffer, OpenAiJson.WriterOptions)) write(writer);
        _buffer.Write(Separator);
        await body.WriteAsync(_buffer.WrittenMemory, cancellationToken);
        await body.FlushAsync(cancellationToken);
    }

    public async Task DoneAsync(CancellationToken cancellationToken)
    {
        await body.WriteAsync(Done, cancellationToken);
        await body.FlushAsync(cancellationToken);
    }
}
