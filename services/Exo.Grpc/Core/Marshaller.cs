using System.Buffers;
using Google.Protobuf;

namespace Exo.Grpc;

/// <summary>
/// Where a marshaller writes one message. A serializer that knows its size up front calls
/// <see cref="SetPayloadLength"/> first so the message can be written straight into the transport without a copy.
/// </summary>
public abstract class SerializationContext
{
    /// <summary>Writes a whole serialized message at once.</summary>
    public abstract void Complete(byte[] payload);

    /// <summary>Announces the exact payload size before <see cref="GetBufferWriter"/> is used.</summary>
    public virtual void SetPayloadLength(int payloadLength)
    {
    }

    public abstract IBufferWriter<byte> GetBufferWriter();

    /// <summary>Ends a message written through <see cref="GetBufferWriter"/>.</summary>
    public abstract void Complete();
}

/// <summary>Gives a deserializer the payload of one message.</summary>
public abstract class DeserializationContext
{
    public abstract int PayloadLength { get; }

    /// <summary>The payload without copying; valid only during the deserializer call.</summary>
    public abstract ReadOnlySequence<byte> PayloadAsReadOnlySequence();

    public virtual byte[] PayloadAsNewBuffer() => PayloadAsReadOnlySequence().ToArray();
}

/// <summary>Turns messages of type <typeparamref name="T"/> into bytes and back.</summary>
public sealed class Marshaller<T>
{
    public Marshaller(Action<T, SerializationContext> contextualSerializer, Func<DeserializationContext, T> contextualDeserializer)
    {
        ContextualSerializer = contextualSerializer ?? throw new ArgumentNullException(nameof(contextualSerializer));
        ContextualDeserializer = contextualDeserializer ?? throw new ArgumentNullException(nameof(contextualDeserializer));
    }

    public Marshaller(Func<T, byte[]> serializer, Func<byte[], T> deserializer)
        : this((value, ctx) => ctx.Complete(serializer(value)), ctx => deserializer(ctx.PayloadAsNewBuffer()))
    {
    }

    public Action<T, SerializationContext> ContextualSerializer { get; }

    public Func<DeserializationContext, T> ContextualDeserializer { get; }
}

public static class Marshallers
{
    /// <summary>A marshaller over <c>byte[]</c> that passes payloads through unchanged.</summary>
    public static Marshaller<byte[]> ByteArray { get; } = new(static b => b, static b => b);

    public static Marshaller<T> Create<T>(Func<T, byte[]> serializer, Func<byte[], T> deserializer) => new(serializer, deserializer);

    /// <summary>
    /// A zero-copy marshaller for Google.Protobuf messages: sizes the message, writes it straight into the
    /// transport and parses from the received buffer segments in place.
    /// </summary>
    public static Marshaller<T> ForProtobuf<T>(MessageParser<T> parser)
        where T : IMessage<T>, IBufferMessage =>
        new(
            static (message, ctx) =>
            {
                ctx.SetPayloadLength(message.CalculateSize());
                message.WriteTo(ctx.GetBufferWriter());
                ctx.Complete();
            },
            ctx => parser.ParseFrom(ctx.PayloadAsReadOnlySequence()));
}
