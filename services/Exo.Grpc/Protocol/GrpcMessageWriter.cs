using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Pipelines;

namespace Exo.Grpc.Protocol;

/// <summary>
/// Writes 5-byte length-prefixed gRPC messages into a pipe. When the marshaller announces the payload length
/// (as the protobuf marshaller does) and no compression is used, the message is serialized straight into the
/// pipe's memory; otherwise it goes through a scratch buffer that this writer keeps for the life of the call.
/// </summary>
internal sealed class GrpcMessageWriter(PipeWriter pipe, int? maxMessageSize, bool gzip) : SerializationContext, IBufferWriter<byte>
{
    private ArrayBufferWriter<byte>? _scratch;
    private int _declaredLength;
    private int _written;
    private bool _direct;
    private bool _completed;

    public PipeWriter Pipe => pipe;

    /// <summary>Serializes one message and frames it into the pipe (not flushed).</summary>
    public void Write<T>(T message, Action<T, SerializationContext> serializer)
    {
        _declaredLength = -1;
        _written = 0;
        _direct = false;
        _completed = false;
        serializer(message, this);
        if (!_completed)
        {
            throw new RpcException(new Status(StatusCode.Internal, "The message serializer did not complete the message."));
        }
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        var result = await pipe.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (result.IsCanceled)
        {
            throw new OperationCanceledException(cancellationToken);
        }
    }

    public override void SetPayloadLength(int payloadLength) => _declaredLength = payloadLength;

    public override IBufferWriter<byte> GetBufferWriter()
    {
        if (_declaredLength >= 0 && !gzip)
        {
            CheckSize(_declaredLength);
            WriteHeader(compressed: false, _declaredLength);
            _direct = true;
            return this;
        }

        _scratch ??= new ArrayBufferWriter<byte>();
        _scratch.ResetWrittenCount();
        return _scratch;
    }

    public override void Complete()
    {
        if (_direct)
        {
            if (_written != _declaredLength)
            {
                throw new RpcException(new Status(StatusCode.Internal, $"The serializer wrote {_written} bytes after announcing {_declaredLength}."));
            }

            _completed = true;
            return;
        }

        WritePayload(_scratch is null ? [] : _scratch.WrittenSpan);
    }

    public override void Complete(byte[] payload) => WritePayload(payload);

    void IBufferWriter<byte>.Advance(int count)
    {
        _written += count;
        pipe.Advance(count);
    }

    Memory<byte> IBufferWriter<byte>.GetMemory(int sizeHint) => pipe.GetMemory(sizeHint);

    Span<byte> IBufferWriter<byte>.GetSpan(int sizeHint) => pipe.GetSpan(sizeHint);

    private void WritePayload(ReadOnlySpan<byte> payload)
    {
        CheckSize(payload.Length);
        if (gzip)
        {
            using var compressed = new MemoryStream();
            using (var stream = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            {
                stream.Write(payload);
            }

            payload = compressed.GetBuffer().AsSpan(0, (int)compressed.Length);
            WriteHeader(compressed: true, payload.Length);
            pipe.Write(payload);
        }
        else
        {
            WriteHeader(compressed: false, payload.Length);
            pipe.Write(payload);
        }

        _completed = true;
    }

    private void CheckSize(int length)
    {
        if (length > (maxMessageSize ?? int.MaxValue))
        {
            throw new RpcException(new Status(
                StatusCode.ResourceExhausted,
                $"Sending message exceeds the maximum configured message size ({length} > {maxMessageSize} bytes)."));
        }
    }

    private void WriteHeader(bool compressed, int length)
    {
        var header = pipe.GetSpan(GrpcProtocol.HeaderSize);
        header[0] = compressed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(header[1..], (uint)length);
        pipe.Advance(GrpcProtocol.HeaderSize);
    }
}
