using Google.Protobuf;

namespace Exo.Grpc;

/// <summary>Builds method descriptors for Google.Protobuf messages, the way generated gRPC code declares them.</summary>
public static class ProtobufMethods
{
    public static Method<TRequest, TResponse> Create<TRequest, TResponse>(MethodType type, string serviceName, string name)
        where TRequest : class, IMessage<TRequest>, IBufferMessage, new()
        where TResponse : class, IMessage<TResponse>, IBufferMessage, new() =>
        new(type, serviceName, name, ProtobufMarshaller<TRequest>.Instance, ProtobufMarshaller<TResponse>.Instance);

    /// <summary>What a service base class throws for a method its subclass does not override.</summary>
    public static RpcException Unimplemented(this IMethod method) =>
        new(new Status(StatusCode.Unimplemented, $"Method {method.FullName} is not implemented."));

    private static class ProtobufMarshaller<T>
        where T : class, IMessage<T>, IBufferMessage, new()
    {
        public static readonly Marshaller<T> Instance = Marshallers.ForProtobuf(new MessageParser<T>(static () => new T()));
    }
}
