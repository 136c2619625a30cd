using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace Exo.Grpc.Protocol;

/// <summary>
/// Reads 5-byte length-prefixed gRPC messages from a pipe. Uncompressed payloads are handed to the deserializer
/// in place (no copy); the frame header is validated before the payload is buffered, so an oversized message is
/// rejected without reading it.
/// </summary>
internal sealed class GrpcMessageReader(PipeReader reader, int? maxMessageSize, string? encoding) : DeserializationContext
{
    private readonly bool _gzip = encoding is not null && encoding.Equals(GrpcProtocol.Gzip, StringComparison.OrdinalIgnoreCase);
    private ReadOnlySequence<byte> _payload;

    public override int PayloadLength => (int)_payload.Length;

    public override ReadOnlySequence<byte> PayloadAsReadOnlySequence() => _payload;

    /// <summary>Reads the next message, or returns false at a clean end of stream.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<(bool HasMessage, T? Message)> ReadAsync<T>(Func<DeserializationContext, T> deserializer, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (TryReadFrame(buffer, out var payload, out var compressed))
            {
                var frameEnd = payload.End;
                try
                {
                    return (true, Deserialize(payload, compressed, deserializer));
                }
                finally
                {
                    reader.AdvanceTo(frameEnd);
                }
            }

            if (result.IsCompleted || result.IsCanceled)
            {
                reader.AdvanceTo(buffer.End);
                if (buffer.Length == 0 && result.IsCompleted)
                {
                    return (false, default);
                }

                throw result.IsCanceled
                    ? new OperationCanceledException(cancellationToken)
                    : Internal("Incomplete message: the stream ended inside a gRPC frame.");
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private bool TryReadFrame(ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> payload, out bool compressed)
    {
        payload = default;
        compressed = false;
        if (buffer.Length < GrpcProtocol.HeaderSize)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[GrpcProtocol.HeaderSize];
        buffer.Slice(0, GrpcProtocol.HeaderSize).CopyTo(header);
        compressed = header[0] switch
        {
            0 => false,
            1 => true,
            _ => throw Internal($"Invalid compressed flag {header[0]} in a gRPC frame."),
        };
        if (compressed && !_gzip)
        {
            throw Internal("A message is marked compressed but the call has no supported grpc-encoding.");
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (length > (uint)(maxMessageSize ?? int.MaxValue))
        {
            throw new RpcException(new Status(
                StatusCode.ResourceExhausted,
                $"Received message exceeds the maximum configured message size ({length} > {maxMessageSize} bytes)."));
        }

        if (buffer.Length - GrpcProtocol.HeaderSize < length)
        {
            return false;
        }

        payload = buffer.Slice(GrpcProtocol.HeaderSize, length);
        return true;
    }

    private T Deserialize<T>(ReadOnlySequence<byte> payload, bool compressed, Func<DeserializationContext, T> deserializer)
    {
        byte[]? rented = null;
        try
        {
            if (compressed)
            {
                (rented, var length) = Decompress(payload);
                payload = new ReadOnlySequence<byte>(rented, 0, length);
            }

            _payload = payload;
            return deserializer(this);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw Internal("Failed to deserialize a message: " + ex.Message);
        }
        finally
        {
            _payload = default;
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private (byte[] Buffer, int Length) Decompress(ReadOnlySequence<byte> payload)
    {
        var limit = maxMessageSize ?? int.MaxValue;
        var input = ArrayPool<byte>.Shared.Rent((int)payload.Length);
        var output = ArrayPool<byte>.Shared.Rent(Math.Max(4096, (int)payload.Length * 4));
        var length = 0;
        try
        {
            payload.CopyTo(input);
            using var gzip = new GZipStream(new MemoryStream(input, 0, (int)payload.Length), CompressionMode.Decompress);
            int read;
            while ((read = gzip.Read(output, length, output.Length - length)) > 0)
            {
                length += read;
                if (length > limit)
                {
                    throw new RpcException(new Status(StatusCode.ResourceExhausted, "Decompressed message exceeds the maximum configured message size."));
                }

                if (length == output.Length)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent(output.Length * 2);
                    output.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(output);
                    output = bigger;
                }
            }

            return (output, length);
        }
        catch (InvalidDataException)
        {
            ArrayPool<byte>.Shared.Return(output);
            throw Internal("A compressed message is not valid gzip.");
        }
        catch (RpcException)
        {
            ArrayPool<byte>.Shared.Return(output);
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(input);
        }
    }

    private static RpcException Internal(string detail) => new(new Status(StatusCode.Internal, detail));
}
